"""The extension registry's routing and failure policy."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from casedesk.domain.extensions.registry import ExtensionError, ExtensionRegistry, Scene
from casedesk.kit.errors import InvalidInput


async def _default(value: int) -> str:
    return f"default:{value}"


SCENE = Scene("test.scene", _default)


def _failures(edition: str) -> float:
    value = REGISTRY.get_sample_value(
        "casedesk_extension_failures_total", {"scene": "test.scene", "edition": edition}
    )
    return value or 0.0


async def test_an_edition_without_an_implementation_gets_the_default() -> None:
    registry = ExtensionRegistry()
    assert await registry.call(SCENE, "standard", 1) == "default:1"
    assert await registry.call(SCENE, "ecommerce", 2) == "default:2"


async def test_an_edition_gets_its_own_implementation_and_others_do_not() -> None:
    registry = ExtensionRegistry()

    @registry.register(SCENE, "shop")
    async def shop(value: int) -> str:
        return f"shop:{value}"

    assert await registry.call(SCENE, "shop", 3) == "shop:3"
    assert await registry.call(SCENE, "standard", 3) == "default:3"
    assert registry.editions() == {"standard", "shop"}


async def test_a_domain_error_from_an_extension_propagates() -> None:
    registry = ExtensionRegistry()

    @registry.register(SCENE, "strict")
    async def strict(value: int) -> str:
        raise InvalidInput("no", field="value")

    with pytest.raises(InvalidInput):
        await registry.call(SCENE, "strict", 1)


async def test_an_unexpected_error_is_counted_and_the_default_runs() -> None:
    registry = ExtensionRegistry()

    @registry.register(SCENE, "buggy")
    async def buggy(value: int) -> str:
        return str(1 // (value - value))

    before = _failures("buggy")
    assert await registry.call(SCENE, "buggy", 4) == "default:4"
    assert _failures("buggy") == before + 1


def test_registration_checks_the_implementation() -> None:
    registry = ExtensionRegistry()

    async def two(a: int, b: int) -> str:
        return ""

    def sync(value: int) -> str:
        return ""

    async def fine(value: int) -> str:
        return ""

    with pytest.raises(ExtensionError, match="takes 2 arguments"):
        registry.add(SCENE, "x", two)
    with pytest.raises(ExtensionError, match="async def"):
        registry.add(SCENE, "x", sync)  # type: ignore[arg-type]
    with pytest.raises(ExtensionError, match="is the default"):
        registry.add(SCENE, "standard", fine)
    registry.add(SCENE, "x", fine)
    with pytest.raises(ExtensionError, match="twice"):
        registry.add(SCENE, "x", fine)


def test_the_ecommerce_edition_is_published_as_an_entry_point() -> None:
    registry = ExtensionRegistry()
    assert "ecommerce" in registry.load_entry_points()
    assert "ecommerce" in registry.editions()
