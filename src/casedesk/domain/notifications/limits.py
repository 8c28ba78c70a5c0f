"""How much work one render of a notification template may do.

A template an admin writes runs in Jinja2's sandbox, which keeps it from Python but not from
the CPU: ``{% for a in range(1000) %}{% for b in range(1000) %}`` is a million steps, and
``{{ "x" * 10 ** 10 }}`` asks for ten gigabytes. So a render carries a :class:`Budget`, shared
by the subject, the text and the HTML of one mail: every loop iteration, call and filter is
a step, the output and every string or list a template makes has a size limit, and the render
has a deadline, looked at as steps are taken. Sizes are checked before the work where they
can be known (``*``, ``**``, ``join``, a width given to a filter or a method) and after it
where the result is at most twice what was allowed (``+``, ``~``). A render over its budget
raises :class:`TooMuchWork`, which the caller turns into a 422.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import SandboxedEnvironment

STEPS = 100_000
"""Loop iterations, calls and filters in one render."""
SIZE = 1_000_000
"""Characters of output, and of any one string or list the template makes."""
ARGUMENT = 100_000
"""The largest width or count a filter or a string's or list's method is given."""
_SIZING_FILTERS = frozenset(["center", "indent", "wordwrap", "truncate", "batch", "slice"])
"""The built-in filters whose numbers are widths or counts (``format``'s are values)."""
SECONDS = 2.0
"""Wall-clock time of one render."""
_CLOCK_EVERY = 512
_WIDE_FORMAT = re.compile(r"\d{6,}")
"""A ``%`` or ``format`` width or precision of 100,000 or more."""
_LOOP_FILTER = "loop_budget"


class TooMuchWork(Exception):
    """The template asked for more than one render may do."""


class Budget:
    """What is left of one render's steps, output and time."""

    def __init__(self, steps: int = STEPS, size: int = SIZE, seconds: float = SECONDS) -> None:
        self.steps, self.size, self.output = steps, size, size
        self.deadline = time.monotonic() + seconds

    def step(self, count: int = 1) -> None:
        self.steps -= count
        if self.steps < 0:
            raise TooMuchWork(f"more than {STEPS:,} loop iterations, calls and filters")
        if self.steps % _CLOCK_EVERY == 0 and time.monotonic() > self.deadline:
            raise TooMuchWork(f"it takes longer than {SECONDS:g} seconds")

    def sized(self, value: Any) -> Any:
        """``value``, if a string or list of it is within the size limit."""
        if isinstance(value, str | list | tuple) and len(value) > self.size:
            raise TooMuchWork(f"it makes a value of more than {self.size:,} characters or items")
        return value

    def written(self, chunk: str) -> str:
        self.output -= len(chunk)
        if self.output < 0:
            raise TooMuchWork(f"its output is longer than {SIZE:,} characters")
        return chunk


_current: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "notification_budget", default=None
)


@contextlib.contextmanager
def budgeted() -> Iterator[Budget]:
    """One render's budget, shared by every template rendered inside (one mail's fields)."""
    found = _current.get()
    if found is not None:
        yield found
        return
    budget = Budget()
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def _budget() -> Budget:
    found = _current.get()
    if found is None:
        raise TooMuchWork("a template renders only inside a budget")
    return found


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.step()
        yield item


def _check_arguments(args: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > ARGUMENT:
            raise TooMuchWork(f"it asks for a width or count above {ARGUMENT:,}")


def _check_format(text: Any) -> None:
    if isinstance(text, str) and _WIDE_FORMAT.search(text):
        raise TooMuchWork("it formats with a width or precision of 100,000 or more")


def _budgeted_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.step()
        if name in _SIZING_FILTERS:
            _check_arguments(args, kwargs)
        if name == "join":
            _check_join(budget, args)
        if name == "format":
            _check_format(next((a for a in args if isinstance(a, str)), None))
        return budget.sized(function(*args, **kwargs))

    return wrapper


def _check_join(budget: Budget, args: tuple[Any, ...]) -> None:
    """Refuse a join whose parts are over the size limit together, before joining them."""
    parts = next((a for a in args if isinstance(a, list | tuple)), None)
    if parts is not None:
        total = sum(len(part) for part in parts if isinstance(part, str))
        if total > budget.size:
            raise TooMuchWork(f"it joins more than {budget.size:,} characters")


class _BudgetedCode(CodeGenerator):
    """Loops iterate through the budget, and ``~`` checks the size of what it joins."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        # Before the generator collects the filters the template uses.
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(
                loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.lineno
            )
        super().visit_Template(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.sized(")
        super().visit_Concat(node, frame)
        self.write(")")


class BudgetedEnvironment(SandboxedEnvironment):
    """The sandbox with one render's budget on loops, calls, filters, operators and sizes."""

    code_generator_class = _BudgetedCode
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {
            name: _budgeted_filter(name, function) for name, function in self.filters.items()
        }
        self.filters[_LOOP_FILTER] = _counted

    def sized(self, value: Any) -> Any:
        return _budget().sized(value)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        if operator == "**" and _huge_power(left, right):
            raise TooMuchWork("it raises a number to a power above 64")
        if operator == "*":
            _check_repeat(budget, left, right)
            _check_repeat(budget, right, left)
        if operator == "%":
            _check_format(left)
        return budget.sized(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.step()
        if getattr(__obj, "__name__", None) in ("format", "format_map"):
            method = getattr(__obj, "__wrapped__", __obj)  # the sandbox's wrapper of str.format
            _check_format(getattr(method, "__self__", None))
        elif isinstance(getattr(__obj, "__self__", None), str | list | tuple):
            _check_arguments(args, kwargs)  # "x".ljust(n), "x".zfill(n)
        if isinstance(__obj, LoopContext) and args:
            args = (_counted(args[0]), *args[1:])
        return budget.sized(super().call(__context, __obj, *args, **kwargs))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _huge_power(base: Any, exponent: Any) -> bool:
    return _number(base) and _number(exponent) and abs(exponent) > 64 and abs(base) > 1


def _check_repeat(budget: Budget, sequence: Any, times: Any) -> None:
    repeated = isinstance(sequence, str | list | tuple) and isinstance(times, int)
    if repeated and len(sequence) * times > budget.size:
        raise TooMuchWork(f"it repeats a value past {budget.size:,} characters or items")
