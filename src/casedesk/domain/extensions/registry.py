"""The extension registry: routing is data, failure policy belongs to the dispatcher.

A scene is declared once with its default implementation. Editions register their own
implementation for a scene by decorator, or from the ``casedesk.extensions`` entry-point
group. Calling a scene runs the tenant edition's implementation; a domain error it
raises propagates (it is a business rule), any other exception is logged with context,
counted in ``casedesk_extension_failures_total``, and the default runs instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, ParamSpec, TypeVar

from prometheus_client import Counter

from casedesk.kit.errors import CasedeskError
from casedesk.kit.logging import get_logger

P = ParamSpec("P")
R = TypeVar("R")
ENTRY_POINT_GROUP = "casedesk.extensions"
DEFAULT_EDITION = "standard"

EXTENSION_FAILURES = Counter(
    "casedesk_extension_failures_total",
    "Extensions that raised an unexpected error; the scene's default ran instead",
    ["scene", "edition"],
)
log = get_logger(__name__)


@dataclass(frozen=True)
class Scene(Generic[P, R]):
    """A named extension point and its default implementation."""

    name: str
    default: Callable[P, Awaitable[R]]
    description: str = ""

    @property
    def arity(self) -> int:
        return len(inspect.signature(self.default).parameters)


class ExtensionError(RuntimeError):
    """An extension does not fit its scene; raised at registration, not at call time."""


class ExtensionRegistry:
    def __init__(self) -> None:
        self._implementations: dict[tuple[str, str], Callable[..., Awaitable[Any]]] = {}

    def register(
        self, scene: Scene[P, R], edition: str
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        def decorate(implementation: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
            self.add(scene, edition, implementation)
            return implementation

        return decorate

    def add(
        self, scene: Scene[P, R], edition: str, implementation: Callable[P, Awaitable[R]]
    ) -> None:
        if edition == DEFAULT_EDITION:
            raise ExtensionError(f"{scene.name}: the {DEFAULT_EDITION} edition is the default")
        if not inspect.iscoroutinefunction(implementation):
            raise ExtensionError(f"{scene.name}/{edition}: an extension must be `async def`")
        arity = len(inspect.signature(implementation).parameters)
        if arity != scene.arity:
            raise ExtensionError(
                f"{scene.name}/{edition}: takes {arity} arguments, the scene passes {scene.arity}"
            )
        key = (scene.name, edition)
        if key in self._implementations:
            raise ExtensionError(f"{scene.name}/{edition} is registered twice")
        self._implementations[key] = implementation

    def editions(self) -> set[str]:
        return {DEFAULT_EDITION} | {edition for _, edition in self._implementations}

    async def call(self, scene: Scene[P, R], edition: str, *args: P.args, **kwargs: P.kwargs) -> R:
        implementation = self._implementations.get((scene.name, edition))
        if implementation is None:
            return await scene.default(*args, **kwargs)
        try:
            result: R = await implementation(*args, **kwargs)
        except CasedeskError:
            raise
        except Exception:
            EXTENSION_FAILURES.labels(scene.name, edition).inc()
            log.exception(
                "extension failed; running the default", scene=scene.name, edition=edition
            )
            return await scene.default(*args, **kwargs)
        return result

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Call every ``register(registry)`` published under ``group``; returns their names."""
        loaded = []
        for entry_point in entry_points(group=group):
            register: Callable[[ExtensionRegistry], None] = entry_point.load()
            register(self)
            loaded.append(entry_point.name)
        return loaded
