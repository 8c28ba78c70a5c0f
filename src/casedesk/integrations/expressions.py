"""The two small languages of connectors and workflows, both without Python eval.

- A **template** is a Jinja2 string rendered in the sandbox: ``"/items/{{ item.id }}"``,
  ``"Bearer {{ secrets.token }}"``. A string that is one expression and nothing else
  (``"{{ trigger.amount }}"``) gives the expression's value, not its text, so a mapping keeps
  numbers, lists and objects as they are.
- A **selection** is a JMESPath expression: ``"data.items"``, ``"value[].id"``.

A template can apply a selection to a value with the ``select_json`` filter, to make what
Jinja has no syntax for (a list of objects from a list of ids, a batch request's body):
``{{ ids | select_json("[].{id: @, url: join('', ['/items/', @])}") }}``.

Both are compiled once per text. Rendering is bounded: the sandbox refuses unsafe attributes
and ranges of more than 100,000, repetitions are refused beyond ``MAX_ITEMS`` items, and an
answer longer than ``MAX_OUTPUT`` characters is an error, so no admin's template can take the
process down.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import jmespath
import jmespath.exceptions
from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_OUTPUT = 65_536
"""Characters a rendered template may have."""
MAX_ITEMS = 10_000
"""Items a range or a repetition may make."""
_ONE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expression>.*)\}\}\s*$", re.S)


class ExpressionError(ValueError):
    """A template or a selection that cannot be compiled or evaluated; says why."""


class _Bounded(SandboxedEnvironment):
    """The sandbox, with repetitions (``"x" * n``, ``x ** n``) bounded too."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int) and abs(right) > 1_000:
                raise SecurityError("an exponent above 1000 is refused")
            return left**right
        for item, count in ((left, right), (right, left)):
            sized = isinstance(item, str | list | tuple) and isinstance(count, int)
            if sized and count * max(len(item), 1) > MAX_ITEMS * 10:
                raise SecurityError("a repetition that large is refused")
        return operator.mul(left, right)


_ENVIRONMENT = _Bounded(undefined=StrictUndefined, autoescape=False)


def _select_json(value: Any, selection: str) -> Any:
    """The ``select_json`` filter: a selection's value over a template's value."""
    return select(selection, value)


_ENVIRONMENT.filters["select_json"] = _select_json


def _is_expression(text: str) -> str | None:
    """The expression of a template that is only ``{{ expression }}``, else None."""
    match = _ONE_EXPRESSION.match(text)
    if match is None:
        return None
    expression = match.group("expression")
    return None if "{{" in expression or "}}" in expression else expression.strip()


@lru_cache(maxsize=4096)
def _compiled_template(text: str) -> Callable[[Mapping[str, Any]], Any]:
    try:
        expression = _is_expression(text)
        if expression is not None:
            compiled = _ENVIRONMENT.compile_expression(expression, undefined_to_none=False)
            return lambda context: compiled(**context)
        template = _ENVIRONMENT.from_string(text)
        return lambda context: template.render(**context)
    except TemplateError as exc:
        raise ExpressionError(f"template {text!r} does not compile: {exc}") from None


@lru_cache(maxsize=4096)
def _compiled_selection(text: str) -> jmespath.parser.ParsedResult:
    try:
        return jmespath.compile(text)
    except jmespath.exceptions.JMESPathError as exc:
        raise ExpressionError(f"selection {text!r} does not compile: {exc}") from None


def check_template(text: str) -> None:
    """Raise ExpressionError if the template does not compile."""
    _compiled_template(text)


def check_selection(text: str) -> None:
    """Raise ExpressionError if the selection does not compile."""
    _compiled_selection(text)


def render(text: str, context: Mapping[str, Any]) -> Any:
    """A template's value in ``context``: text, or the value of a lone expression."""
    try:
        value = _compiled_template(text)(context)
    except ExpressionError:
        raise
    except (TemplateError, SecurityError, ArithmeticError, TypeError, ValueError) as exc:
        raise ExpressionError(f"template {text!r}: {type(exc).__name__}: {exc}") from None
    if isinstance(value, Undefined):
        raise ExpressionError(f"template {text!r} names something that is undefined")
    if isinstance(value, nodes.Node):  # never: compile_expression evaluates
        raise ExpressionError(f"template {text!r} did not evaluate")
    if isinstance(value, str) and len(value) > MAX_OUTPUT:
        raise ExpressionError(f"template {text!r} renders more than {MAX_OUTPUT} characters")
    return value


def render_tree(tree: Any, context: Mapping[str, Any]) -> Any:
    """Render every string of a JSON tree (object keys stay as written)."""
    if isinstance(tree, str):
        return render(tree, context)
    if isinstance(tree, dict):
        return {key: render_tree(value, context) for key, value in tree.items()}
    if isinstance(tree, list):
        return [render_tree(value, context) for value in tree]
    return tree


def select(text: str, data: Any) -> Any:
    """The selection's value in ``data`` (None when it finds nothing)."""
    try:
        return _compiled_selection(text).search(data)
    except jmespath.exceptions.JMESPathError as exc:
        raise ExpressionError(f"selection {text!r}: {exc}") from None


def templates_of(tree: Any) -> list[tuple[str, str]]:
    """Every template string of a JSON tree, with where it stands (``a.b.0``)."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, at: str) -> None:
        if isinstance(node, str):
            found.append((at, node))
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{at}.{key}" if at else str(key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{at}.{index}" if at else str(index))

    walk(tree, "")
    return found
