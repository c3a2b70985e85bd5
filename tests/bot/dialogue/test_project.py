from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.dialogue.project import load_project
from bot.errors import FlowError, SourceError

DOMAIN = """
version: "3.1"
slots:
  order_id:
    type: text
  ok:
    type: bool
responses:
  utter_ask_order_id:
    - text: "Which order?"
  utter_ask_ok:
    - text: "Ok?"
  utter_done:
    - text: "Done."
"""


def make(tmp_path: Path, flows: str) -> Path:
    (tmp_path / "domain.yml").write_text(DOMAIN)
    (tmp_path / "flows.yml").write_text(textwrap.dedent(flows))
    return tmp_path


def error_of(tmp_path: Path, flows: str) -> str:
    with pytest.raises(SourceError) as info:
        load_project(make(tmp_path, flows))
    return str(info.value)


def test_valid_project_loads_with_patterns(tmp_path: Path) -> None:
    project = load_project(
        make(
            tmp_path,
            """
            flows:
              order:
                description: Ask for an order.
                steps:
                  - collect: order_id
                  - action: utter_done
              pattern_completed:
                description: Overridden.
                steps:
                  - action: utter_done
            """,
        )
    )
    assert [f.id for f in project.user_flows()] == ["order"]
    assert (
        project.flows["pattern_completed"].steps[project.flows["pattern_completed"].first].value
        == "utter_done"
    )
    assert "pattern_cancel_flow" in project.flows


@pytest.mark.parametrize(
    ("flows", "expected"),
    [
        (
            """
            flows:
              order:
                description: x
                steps:
                  - collect: nope
            """,
            "flows.yml:6: flow 'order', step '1_collect_nope': collect of unknown slot 'nope'",
        ),
        (
            """
            flows:
              order:
                description: x
                steps:
                  - action: utter_missing
            """,
            "flows.yml:6: flow 'order', step '1_action_utter_missing': unknown response 'utter_missing'",
        ),
        (
            """
            flows:
              order:
                description: x
                steps:
                  - action: utter_done
                    next: nowhere
            """,
            "flows.yml:6: flow 'order', step '1_action_utter_done': 'next' points to unknown step 'nowhere'",
        ),
        (
            """
            flows:
              order:
                description: x
                steps:
                  - link: order
                    next: END
            """,
            "flows.yml:6: flow 'order', step '1_link_order': a 'link' step ends the flow and cannot have 'next'",
        ),
        (
            """
            flows:
              order:
                description: x
                steps:
                  - id: a
                    action: utter_done
                  - id: b
                    set_slots:
                      - ok: true
                    next: a
            """,
            "steps a -> b -> a form a cycle without a 'collect'",
        ),
        (
            """
            flows:
              order:
                description: x
                steps:
                  - noop: true
                    next:
                      - if: slots.ok
                        then: END
            """,
            "flows.yml:6: flow 'order', step '1_noop_True': a conditional 'next' needs a final 'else'",
        ),
        (
            """
            flows:
              order:
                description: x
                steps:
                  - noop: true
                    next:
                      - if: slots.unknown = 3
                        then: END
                      - else: END
            """,
            "unknown slot 'unknown' in a condition",
        ),
        (
            """
            flows:
              order:
                description: x
                steps:
                  - action: action_not_there
            """,
            "unknown action 'action_not_there'",
        ),
        (
            """
            flows:
              order:
                steps:
                  - action: utter_done
            """,
            "flows.yml:3: flow 'order': a 'description' is required",
        ),
        (
            """
            flows:
              order:
                description: x
                steps:
                  - call: elsewhere
            """,
            "'call' to unknown flow 'elsewhere'",
        ),
        (
            """
            flows:
              order:
                description: x
                if: slots.ok >
                steps:
                  - action: utter_done
            """,
            "invalid condition",
        ),
        (
            """
            flows:
              order:
                description: x
                steps:
                  - action: utter_done
                  bad: [
            """,
            "flows.yml:7: invalid YAML",
        ),
    ],
)
def test_invalid_flows_report_file_flow_step_and_line(
    tmp_path: Path, flows: str, expected: str
) -> None:
    message = error_of(tmp_path, flows)
    assert expected in message
    assert message.startswith(str(tmp_path / "flows.yml"))


def test_cycle_through_collect_is_allowed(tmp_path: Path) -> None:
    load_project(
        make(
            tmp_path,
            """
            flows:
              order:
                description: x
                steps:
                  - id: ask
                    collect: ok
                    ask_before_filling: true
                    next:
                      - if: slots.ok
                        then: END
                      - else: ask
            """,
        )
    )


def test_duplicate_flow_across_files(tmp_path: Path) -> None:
    make(tmp_path, "flows:\n  a:\n    description: x\n    steps:\n      - action: utter_done\n")
    (tmp_path / "more.yml").write_text(
        "flows:\n  a:\n    description: y\n    steps:\n      - action: utter_done\n"
    )
    with pytest.raises(FlowError, match="flow 'a' is also defined in"):
        load_project(tmp_path)


def test_bad_slot_type_in_domain(tmp_path: Path) -> None:
    (tmp_path / "domain.yml").write_text("slots:\n  x:\n    type: number\n")
    with pytest.raises(FlowError, match=r"domain.yml:2: slot 'x' has unknown type 'number'"):
        load_project(tmp_path)


def test_flows_that_link_each_other_in_a_cycle_are_rejected(tmp_path: Path) -> None:
    """The first turn would utter until the step limit and the next one fail (issue 14)."""
    message = error_of(
        tmp_path,
        """
        flows:
          ping:
            description: x
            steps:
              - action: utter_done
              - link: pong
          pong:
            description: y
            steps:
              - action: utter_done
              - link: ping
        """,
    )
    assert message.startswith(f"{tmp_path / 'flows.yml'}:7: flow 'ping', step '2_link_pong': ")
    assert (
        "flows that link or call each other ping.1_action_utter_done -> ping.2_link_pong -> "
        "pong.1_action_utter_done -> pong.2_link_ping -> ping.1_action_utter_done "
        "form a cycle without a 'collect'"
    ) in message


def test_flows_that_call_each_other_in_a_cycle_are_rejected(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        flows:
          outer:
            description: x
            steps:
              - call: inner
              - action: utter_done
          inner:
            description: y
            steps:
              - noop: true
                next:
                  - if: slots.ok
                    then: END
                  - else:
                      - call: outer
        """,
    )
    assert message.startswith(f"{tmp_path / 'flows.yml'}:6: flow 'outer', step '1_call_inner': ")
    assert "form a cycle without a 'collect'" in message


def test_a_flow_linking_to_itself_is_rejected(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        flows:
          again:
            description: x
            steps:
              - link: again
        """,
    )
    expected = "flows.yml:6: flow 'again', step '1_link_again': steps 1_link_again -> 1_link_again"
    assert expected in message


def test_flows_that_link_in_a_cycle_through_a_collect_are_allowed(tmp_path: Path) -> None:
    """A cycle that asks the customer on each round waits for them: no runaway turn."""
    load_project(
        make(
            tmp_path,
            """
            flows:
              ask:
                description: x
                steps:
                  - collect: order_id
                  - link: again
              again:
                description: y
                steps:
                  - action: utter_done
                  - link: ask
              caller:
                description: Calls a flow that asks, then starts over.
                steps:
                  - call: ask_ok
                  - link: caller
              ask_ok:
                description: z
                steps:
                  - collect: ok
            """,
        )
    )


def test_a_long_chain_of_steps_is_checked_without_recursion(tmp_path: Path) -> None:
    steps = "".join(f"      - id: s{i}\n        action: utter_done\n" for i in range(3000))
    flows = f"flows:\n  long:\n    description: x\n    steps:\n{steps}      - link: long\n"
    (tmp_path / "domain.yml").write_text(DOMAIN)
    (tmp_path / "flows.yml").write_text(flows)
    with pytest.raises(FlowError, match="form a cycle without a 'collect'"):
        load_project(tmp_path)
