from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from casedesk.domain.statemachine.definition import (
    Definition,
    Machine,
    Problem,
    StateDef,
    StateType,
    TransitionDef,
    validate_definition,
)
from casedesk.kit.errors import InvalidInput


def state(code: str, type_: str = "normal") -> dict[str, Any]:
    return {"code": code, "name": code.title(), "type": type_}


def move(action: str, from_: str, to: str, *, reopen: bool = False) -> dict[str, Any]:
    return {"action": action, "name": action.title(), "from": from_, "to": to, "reopen": reopen}


def support_flow() -> dict[str, Any]:
    return {
        "states": [
            state("new", "start"),
            state("open"),
            state("waiting", "pending"),
            state("solved", "end"),
        ],
        "transitions": [
            move("accept", "new", "open"),
            move("wait", "open", "waiting"),
            move("resume", "waiting", "open"),
            move("solve", "open", "solved"),
            move("reopen", "solved", "open", reopen=True),
        ],
    }


def problems_of(raw: dict[str, Any]) -> list[Problem]:
    return validate_definition(Definition.model_validate(raw))


def rules_of(raw: dict[str, Any]) -> list[str]:
    return [problem.rule for problem in problems_of(raw)]


def test_a_valid_definition_has_no_problems() -> None:
    assert problems_of(support_flow()) == []


def test_a_compiled_machine_answers_lookups() -> None:
    machine = Machine.compile(Definition.model_validate(support_flow()))

    assert machine.start.code == "new"
    assert machine.state("waiting").type is StateType.PENDING
    assert [t.action for t in machine.allowed("open")] == ["wait", "solve"]
    assert machine.allowed("new")[0].to == "open"
    assert machine.transition("open", "solve") == machine.allowed("open")[1]
    assert machine.transition("new", "solve") is None
    reopen = machine.transition("solved", "reopen")
    assert reopen is not None
    assert reopen.reopen
    assert machine.is_end("solved")
    assert not machine.is_end("open")
    assert machine.is_pending("waiting")
    assert not machine.is_pending("open")
    assert machine.definition.states[0].code == "new"


def test_a_compiled_machine_refuses_unknown_states() -> None:
    machine = Machine.compile(Definition.model_validate(support_flow()))

    with pytest.raises(KeyError):
        machine.state("nowhere")
    with pytest.raises(KeyError):
        machine.allowed("nowhere")
    with pytest.raises(KeyError):
        machine.transition("nowhere", "solve")


def test_allowed_returns_a_copy() -> None:
    machine = Machine.compile(Definition.model_validate(support_flow()))

    machine.allowed("open").clear()

    assert len(machine.allowed("open")) == 2


def test_compile_raises_invalid_input_listing_every_problem() -> None:
    raw = support_flow()
    raw["states"][0]["type"] = "normal"
    raw["states"].append(state("open"))

    with pytest.raises(InvalidInput) as caught:
        Machine.compile(Definition.model_validate(raw))

    assert caught.value.status == 422
    assert caught.value.extra["errors"] == [
        {
            "field": "states[4].code",
            "rule": "duplicate_state",
            "message": "state code 'open' is already used by an earlier state",
        },
        {
            "field": "states",
            "rule": "one_start_state",
            "message": "exactly one start state is needed; found 0",
        },
    ]


def test_duplicate_state() -> None:
    raw = support_flow()
    raw["states"].append(state("open"))

    assert problems_of(raw) == [
        Problem(
            field="states[4].code",
            rule="duplicate_state",
            message="state code 'open' is already used by an earlier state",
        )
    ]


@pytest.mark.parametrize(
    ("start_codes", "found"),
    [([], "found 0"), (["new", "open"], "found 2: new, open")],
)
def test_one_start_state(start_codes: list[str], found: str) -> None:
    raw = support_flow()
    for entry in raw["states"]:
        if entry["type"] == "start":
            entry["type"] = "normal"
        if entry["code"] in start_codes:
            entry["type"] = "start"

    problems = problems_of(raw)

    assert [p.rule for p in problems] == ["one_start_state"]
    assert problems[0].field == "states"
    assert problems[0].message == f"exactly one start state is needed; {found}"


def test_no_end_state() -> None:
    raw = {"states": [state("new", "start")]}

    problems = problems_of(raw)

    assert [(p.field, p.rule) for p in problems] == [("states", "no_end_state")]


def test_unknown_state() -> None:
    raw = support_flow()
    raw["transitions"].append(move("escalate", "limbo", "void"))

    problems = problems_of(raw)

    assert [(p.field, p.rule) for p in problems] == [
        ("transitions[5].from", "unknown_state"),
        ("transitions[5].to", "unknown_state"),
    ]
    assert "'limbo'" in problems[0].message
    assert "'void'" in problems[1].message


def test_duplicate_action() -> None:
    raw = support_flow()
    raw["transitions"].append(move("solve", "open", "waiting"))

    problems = problems_of(raw)

    assert [(p.field, p.rule) for p in problems] == [("transitions[5]", "duplicate_action")]
    assert "'solve'" in problems[0].message
    assert "'open'" in problems[0].message


def test_the_same_action_from_different_states_is_fine() -> None:
    raw = support_flow()
    raw["transitions"].append(move("solve", "waiting", "solved"))

    assert problems_of(raw) == []


def test_exit_from_end_state() -> None:
    raw = support_flow()
    raw["transitions"][4]["reopen"] = False

    problems = problems_of(raw)

    assert [(p.field, p.rule) for p in problems] == [("transitions[4]", "exit_from_end_state")]
    assert "'solved'" in problems[0].message


def test_reopen_not_from_end_state() -> None:
    raw = support_flow()
    raw["transitions"][2]["reopen"] = True

    assert [(p.field, p.rule) for p in problems_of(raw)] == [
        ("transitions[2]", "reopen_not_from_end_state")
    ]


def test_reopen_into_an_end_state() -> None:
    raw = support_flow()
    raw["states"].append(state("closed", "end"))
    raw["transitions"].append(move("close", "solved", "closed", reopen=True))

    assert [(p.field, p.rule) for p in problems_of(raw)] == [
        ("transitions[5]", "reopen_not_from_end_state")
    ]


def test_unreachable_state() -> None:
    raw = support_flow()
    raw["states"].append(state("orphan"))
    raw["transitions"].append(move("give_up", "orphan", "solved"))

    problems = problems_of(raw)

    assert [(p.field, p.rule) for p in problems] == [("states[4]", "unreachable_state")]
    assert "'orphan'" in problems[0].message


def test_unreachable_state_is_skipped_without_a_single_start() -> None:
    raw = support_flow()
    raw["states"][0]["type"] = "normal"

    assert rules_of(raw) == ["one_start_state"]


def test_dead_end_state() -> None:
    raw = support_flow()
    raw["states"].append(state("stuck"))
    raw["transitions"].append(move("jam", "open", "stuck"))

    problems = problems_of(raw)

    assert [(p.field, p.rule) for p in problems] == [("states[4]", "dead_end_state")]
    assert "'stuck'" in problems[0].message


def test_dead_end_state_is_skipped_without_an_end_state() -> None:
    raw = support_flow()
    raw["states"][3]["type"] = "normal"
    raw["transitions"][4]["reopen"] = False

    assert rules_of(raw) == ["no_end_state"]


def test_transitions_to_unknown_states_do_not_count_for_reachability() -> None:
    raw = {
        "states": [state("new", "start"), state("done", "end")],
        "transitions": [move("finish", "new", "done"), move("lost", "new", "limbo")],
    }

    assert rules_of(raw) == ["unknown_state"]


def test_five_broken_rules_are_all_reported() -> None:
    raw = {
        "states": [
            state("new", "start"),
            state("open"),
            state("open"),
            state("done", "end"),
            state("island"),
        ],
        "transitions": [
            move("accept", "new", "open"),
            move("accept", "new", "done"),
            move("finish", "open", "done"),
            move("again", "done", "open"),
            move("drift", "open", "nowhere"),
            move("leave", "island", "done"),
        ],
    }

    assert rules_of(raw) == [
        "duplicate_state",
        "unknown_state",
        "duplicate_action",
        "exit_from_end_state",
        "unreachable_state",
    ]


def test_the_from_alias_round_trips() -> None:
    raw = move("accept", "new", "open")

    transition = TransitionDef.model_validate(raw)

    assert transition.from_ == "new"
    assert transition.model_dump(by_alias=True) == raw
    assert TransitionDef(action="accept", name="Accept", from_="new", to="open").from_ == "new"


def test_a_definition_round_trips_with_the_alias() -> None:
    definition = Definition.model_validate(support_flow())

    assert definition.model_dump(by_alias=True, mode="json") == support_flow()


@pytest.mark.parametrize("code", ["Open", "1open", "open-case", "", "a" * 64, "_open"])
def test_bad_state_codes_are_validation_errors(code: str) -> None:
    with pytest.raises(ValidationError):
        StateDef.model_validate(state(code) | {"code": code})


@pytest.mark.parametrize("action", ["Solve", "solve now", "9solve"])
def test_bad_actions_are_validation_errors(action: str) -> None:
    with pytest.raises(ValidationError):
        TransitionDef.model_validate(move("solve", "open", "solved") | {"action": action})


def test_names_are_stripped_and_must_not_be_blank() -> None:
    assert StateDef.model_validate(state("open") | {"name": "  Open  "}).name == "Open"
    with pytest.raises(ValidationError):
        StateDef.model_validate(state("open") | {"name": "   "})


def test_a_definition_needs_a_state_and_forbids_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Definition.model_validate({"states": []})
    with pytest.raises(ValidationError):
        Definition.model_validate(support_flow() | {"extra": 1})
