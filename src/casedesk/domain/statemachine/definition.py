"""A state machine definition, every rule it must satisfy, and the compiled machine.

Validation reports all problems at once so an editor can show them together instead of
making the author fix one, resubmit, and discover the next.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from casedesk.kit.errors import InvalidInput

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class StateType(StrEnum):
    START = "start"
    NORMAL = "normal"
    PENDING = "pending"
    END = "end"


class StateDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    name: Name
    type: StateType


class TransitionDef(BaseModel):
    """``from`` is a keyword in Python, so the field is ``from_`` and speaks ``from`` outside."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    action: Code
    name: Name
    from_: str = Field(alias="from")
    to: str
    reopen: bool = False


class Definition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    states: list[StateDef] = Field(min_length=1, max_length=200)
    transitions: list[TransitionDef] = Field(default_factory=list, max_length=1000)


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    rule: str
    message: str


def validate_definition(definition: Definition) -> list[Problem]:
    """Every rule the definition breaks, grouped by rule, each group in definition order."""
    states = definition.states
    transitions = definition.transitions
    first_index = _first_index_by_code(states)
    type_of = {code: states[index].type for code, index in first_index.items()}
    starts = [state.code for state in states if state.type is StateType.START]
    ends = {code for code, state_type in type_of.items() if state_type is StateType.END}
    edges = [(t.from_, t.to) for t in transitions if t.from_ in type_of and t.to in type_of]
    return [
        *_duplicate_states(states),
        *_start_state_count(starts),
        *_end_state_presence(ends),
        *_unknown_states(transitions, type_of),
        *_duplicate_actions(transitions),
        *_exits_from_end_states(transitions, type_of),
        *_misplaced_reopens(transitions, type_of),
        *_unreachable_states(starts, edges, first_index),
        *_dead_end_states(ends, edges, first_index),
    ]


def _first_index_by_code(states: list[StateDef]) -> dict[str, int]:
    """Where a code is duplicated, the first state with it is the one that counts."""
    first_index: dict[str, int] = {}
    for index, state in enumerate(states):
        first_index.setdefault(state.code, index)
    return first_index


def _duplicate_states(states: list[StateDef]) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, state in enumerate(states):
        if state.code in seen:
            yield Problem(
                field=f"states[{index}].code",
                rule="duplicate_state",
                message=f"state code {state.code!r} is already used by an earlier state",
            )
        seen.add(state.code)


def _start_state_count(starts: list[str]) -> Iterator[Problem]:
    if len(starts) == 1:
        return
    found = f"{len(starts)}: {', '.join(starts)}" if starts else "0"
    yield Problem(
        field="states",
        rule="one_start_state",
        message=f"exactly one start state is needed; found {found}",
    )


def _end_state_presence(ends: set[str]) -> Iterator[Problem]:
    if not ends:
        yield Problem(
            field="states", rule="no_end_state", message="at least one end state is needed"
        )


def _unknown_states(
    transitions: list[TransitionDef], type_of: Mapping[str, StateType]
) -> Iterator[Problem]:
    for index, transition in enumerate(transitions):
        for side, code in (("from", transition.from_), ("to", transition.to)):
            if code not in type_of:
                yield Problem(
                    field=f"transitions[{index}].{side}",
                    rule="unknown_state",
                    message=f"transition {transition.action!r} names unknown state {code!r}",
                )


def _duplicate_actions(transitions: list[TransitionDef]) -> Iterator[Problem]:
    seen: set[tuple[str, str]] = set()
    for index, transition in enumerate(transitions):
        key = (transition.from_, transition.action)
        if key in seen:
            yield Problem(
                field=f"transitions[{index}]",
                rule="duplicate_action",
                message=f"action {transition.action!r} is already defined"
                f" from state {transition.from_!r}",
            )
        seen.add(key)


def _exits_from_end_states(
    transitions: list[TransitionDef], type_of: Mapping[str, StateType]
) -> Iterator[Problem]:
    for index, transition in enumerate(transitions):
        if type_of.get(transition.from_) is StateType.END and not transition.reopen:
            yield Problem(
                field=f"transitions[{index}]",
                rule="exit_from_end_state",
                message=f"transition {transition.action!r} leaves end state {transition.from_!r}"
                " but is not marked reopen",
            )


def _misplaced_reopens(
    transitions: list[TransitionDef], type_of: Mapping[str, StateType]
) -> Iterator[Problem]:
    """Unknown endpoints are left to ``unknown_state`` rather than reported twice."""
    for index, transition in enumerate(transitions):
        if not transition.reopen:
            continue
        from_type = type_of.get(transition.from_, StateType.END)
        to_type = type_of.get(transition.to)
        if from_type is not StateType.END or to_type is StateType.END:
            yield Problem(
                field=f"transitions[{index}]",
                rule="reopen_not_from_end_state",
                message=f"reopen transition {transition.action!r} must lead from an end state"
                " to a state that is not an end state;"
                f" it leads from {transition.from_!r} to {transition.to!r}",
            )


def _unreachable_states(
    starts: list[str], edges: list[tuple[str, str]], first_index: Mapping[str, int]
) -> Iterator[Problem]:
    if len(starts) != 1:
        return
    reached = _reachable(starts, _adjacency(edges))
    for code, index in first_index.items():
        if code not in reached:
            yield Problem(
                field=f"states[{index}]",
                rule="unreachable_state",
                message=f"state {code!r} cannot be reached from start state {starts[0]!r}",
            )


def _dead_end_states(
    ends: set[str], edges: list[tuple[str, str]], first_index: Mapping[str, int]
) -> Iterator[Problem]:
    if not ends:
        return
    reversed_edges = [(to, from_) for from_, to in edges]
    can_finish = _reachable(ends, _adjacency(reversed_edges))
    for code, index in first_index.items():
        if code not in ends and code not in can_finish:
            yield Problem(
                field=f"states[{index}]",
                rule="dead_end_state",
                message=f"no end state can be reached from state {code!r}",
            )


def _adjacency(edges: list[tuple[str, str]]) -> dict[str, list[str]]:
    neighbours: dict[str, list[str]] = {}
    for from_, to in edges:
        neighbours.setdefault(from_, []).append(to)
    return neighbours


def _reachable(seeds: Iterable[str], neighbours: Mapping[str, list[str]]) -> set[str]:
    reached = set(seeds)
    queue = deque(reached)
    while queue:
        for following in neighbours.get(queue.popleft(), []):
            if following not in reached:
                reached.add(following)
                queue.append(following)
    return reached


class Machine:
    """A definition known to be valid, indexed for the lookups every case change makes.

    Build it with ``compile``. A state code the definition does not know raises ``KeyError``
    everywhere: a case in such a state means the stored data and its machine disagree.
    """

    __slots__ = ("_states", "_transitions", "definition", "start")

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self._states = {state.code: state for state in definition.states}
        self.start = next(s for s in definition.states if s.type is StateType.START)
        self._transitions: dict[str, dict[str, TransitionDef]] = {code: {} for code in self._states}
        for transition in definition.transitions:
            self._transitions[transition.from_][transition.action] = transition

    @classmethod
    def compile(cls, definition: Definition) -> Machine:
        problems = validate_definition(definition)
        if problems:
            raise InvalidInput(
                f"the state machine definition has {len(problems)} problem(s)",
                errors=[{"field": p.field, "rule": p.rule, "message": p.message} for p in problems],
            )
        return cls(definition)

    def state(self, code: str) -> StateDef:
        return self._states[code]

    def allowed(self, state_code: str) -> list[TransitionDef]:
        return list(self._transitions[state_code].values())

    def transition(self, state_code: str, action: str) -> TransitionDef | None:
        return self._transitions[state_code].get(action)

    def is_end(self, code: str) -> bool:
        return self.state(code).type is StateType.END

    def is_pending(self, code: str) -> bool:
        return self.state(code).type is StateType.PENDING
