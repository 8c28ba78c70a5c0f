from __future__ import annotations

import uuid

import pytest

from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.kit.errors import Forbidden


def principal(role: Role) -> Principal:
    return Principal(
        tenant_id=uuid.uuid4(),
        tenant_slug="t",
        tenant_name="T",
        edition="standard",
        user_id=uuid.uuid4(),
        email="a@b.co",
        name="A",
        role=role,
        api_key_id=uuid.uuid4(),
    )


def test_role_order() -> None:
    assert Role.ADMIN.at_least(Role.AGENT)
    assert Role.AGENT.at_least(Role.VIEWER)
    assert not Role.VIEWER.at_least(Role.AGENT)
    assert not Role.AGENT.at_least(Role.ADMIN)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT])
def test_require_refuses_a_lower_role_and_says_what_is_needed(role: Role) -> None:
    with pytest.raises(Forbidden) as caught:
        principal(role).require(Role.ADMIN, "creating a user")
    assert "creating a user needs the admin role" in caught.value.detail


def test_require_lets_the_role_through() -> None:
    principal(Role.ADMIN).require(Role.ADMIN, "creating a user")
