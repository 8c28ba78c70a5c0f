"""Connector hooks come from ``casedesk.connectors`` entry points, loaded once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from casedesk.integrations.connector_hooks import (
    ConnectorHooks,
    ManifestHooks,
    hook_problems,
    hooks_of,
    installed_hooks,
)
from casedesk.integrations.manifests import parse_manifest
from tests.support.connector_hooks import SampleHooks

ENTRY_POINTS = """\
[casedesk.connectors]
sample = tests.support.connector_hooks:SampleHooks
failing = tests.support.connector_hooks:failing
wrong = tests.support.connector_hooks:NotHooks
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A distribution on the path that publishes three entry points, as pip would leave it."""
    dist = tmp_path / "sample_hooks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sample-hooks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    installed_hooks.cache_clear()
    yield
    installed_hooks.cache_clear()


def _manifest(hooks: str | None):  # type: ignore[no-untyped-def]
    return parse_manifest({"id": "svc", "name": "Service", "hooks": hooks})


def test_an_installed_hook_is_found_and_used(installed: None) -> None:
    assert hook_problems("sample") == []
    hooks = hooks_of(_manifest("sample"))
    assert isinstance(hooks, ConnectorHooks)
    assert hooks.items("new", {"pages": [{"rows": [1, 2]}, {"rows": [3]}]}, {}) == [1, 2, 3]
    assert hooks.verify("new", None, {}) is None  # type: ignore[arg-type]


def test_hooks_are_loaded_once_per_process(installed: None) -> None:
    before = SampleHooks.made
    first = hooks_of(_manifest("sample"))
    assert hooks_of(_manifest("sample")) is first
    assert installed_hooks() is installed_hooks()
    assert SampleHooks.made - before <= 1


def test_a_hook_that_is_not_installed_is_a_problem_of_the_manifest(installed: None) -> None:
    (problem,) = hook_problems("imaginary")
    assert problem.path == "hooks"
    assert "no hooks 'imaginary' are installed" in problem.message
    assert "sample" in problem.message


@pytest.mark.parametrize(
    ("name", "says"),
    [("failing", "RuntimeError: cannot start"), ("wrong", "does not make ConnectorHooks")],
)
def test_a_hook_that_does_not_load_is_a_problem(installed: None, name: str, says: str) -> None:
    (problem,) = hook_problems(name)
    assert problem.path == "hooks"
    assert says in problem.message


def test_a_connector_without_hooks_leaves_everything_to_its_manifest() -> None:
    hooks = hooks_of(_manifest(None))
    assert isinstance(hooks, ManifestHooks)
    assert hooks.items("new", {"any": 1}, {}) is None
    assert hook_problems(None) == []
