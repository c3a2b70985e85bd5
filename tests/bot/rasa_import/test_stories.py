"""Stories: covered, converted into flows, turned into tests, or left to a human."""

from __future__ import annotations

import yaml

from bot.rasa_import.convert import convert

from .conftest import MiniProject, findings, flows_of

RULES = """
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: start the order form
  steps:
  - intent: order_status
  - action: order_form
  - active_loop: order_form
- rule: submit the order form
  condition:
  - active_loop: order_form
  steps:
  - action: order_form
  - active_loop: null
  - action: action_check_order
"""


def test_a_story_contradicting_a_rule_needs_a_human(mini_project: MiniProject) -> None:
    stories = """
    stories:
    - story: greet differently
      steps:
      - intent: greet
      - action: utter_happy
    """
    conversion = convert(mini_project(rules=RULES, stories=stories))
    human = [f for f in conversion.report.findings if f.status == "needs_human"]
    assert len(human) == 1
    assert human[0].where.endswith("data/stories.yml:5")
    assert human[0].reason == (
        "'greet' runs ['utter_happy'] here but ['utter_greet'] in the flow greet (story at line 3)"
    )


def test_stories_that_start_with_the_bot_or_leave_a_form_oddly(mini_project: MiniProject) -> None:
    stories = """
    stories:
    - story: bot first
      steps:
      - action: utter_greet
      - intent: greet
    - story: odd form
      steps:
      - intent: order_status
      - action: order_form
      - active_loop: order_form
      - intent: deny
      - action: utter_sad
    """
    human = findings(convert(mini_project(rules=RULES, stories=stories)), "story", "needs_human")
    assert human["bot first"].startswith("the story starts with a bot step")
    assert human["odd form"].startswith("inside order_form, 'deny' runs ['utter_sad']")


def test_story_only_intents_become_flows_and_tests(mini_project: MiniProject) -> None:
    stories = """
    stories:
    - story: check an order
      steps:
      - intent: greet
      - action: utter_greet
      - intent: order_status
      - action: order_form
      - active_loop: order_form
      - user: "it is A-7"
        intent: inform
        entities:
        - order_id: A-7
      - action: order_form
      - active_loop: null
      - action: action_check_order
      - intent: goodbye
      - action: utter_goodbye
    - story: bye
      steps:
      - intent: goodbye
      - action: utter_goodbye
    """
    conversion = convert(mini_project(rules=RULES, stories=stories))
    assert flows_of(conversion)["goodbye"]["steps"] == [{"action": "utter_goodbye"}]
    assert set(findings(conversion, "story", "converted")) == {"check an order", "bye"}
    cases = yaml.safe_load(conversion.files["flows/tests/e2e_stories.yml"])["test_cases"]
    assert cases[0] == {
        "test_case": "story_check_an_order",
        "steps": [
            {"user": "hi"},
            {"utter": "utter_greet"},
            {"user": "where is my order?"},
            {"utter": "utter_ask_order_id"},
            {"user": "it is A-7", "assertions": [{"action_executed": "action_check_order"}]},
            {"user": "bye"},
            {"utter": "utter_goodbye"},
        ],
    }


def test_a_story_without_usable_examples_gets_no_test(mini_project: MiniProject) -> None:
    stories = """
    stories:
    - story: greet with a name
      steps:
      - intent: greet
        entities:
        - order_id: A-1
      - action: utter_greet
    """
    conversion = convert(mini_project(rules=RULES, stories=stories))
    assert findings(conversion, "story", "covered") == {
        "greet with a name": "no e2e test: an intent has no example"
    }
    assert "flows/tests/e2e_stories.yml" not in conversion.files


def test_or_alternatives_that_all_map_give_one_test_each(mini_project: MiniProject) -> None:
    rules = (
        RULES
        + """
- rule: bye
  steps:
  - or:
    - intent: goodbye
    - intent: deny
  - action: utter_goodbye
"""
    )
    stories = """
    stories:
    - story: hello then leave
      steps:
      - intent: greet
      - action: utter_greet
      - or:
        - intent: goodbye
        - intent: deny
      - action: utter_goodbye
    """
    conversion = convert(mini_project(rules=rules, stories=stories))
    assert findings(conversion, "story", "covered") == {
        "hello then leave": "e2e tests ('or' expanded) story_hello_then_leave, "
        "story_hello_then_leave_2"
    }
    cases = yaml.safe_load(conversion.files["flows/tests/e2e_stories.yml"])["test_cases"]
    assert [c["steps"][2] for c in cases] == [{"user": "bye"}, {"user": "no"}]


def test_a_form_action_inside_the_form_is_no_activation(mini_project: MiniProject) -> None:
    stories = """
    stories:
    - story: digression
      steps:
      - intent: order_status
      - action: order_form
      - active_loop: order_form
      - intent: ask_hours
      - action: utter_hours
      - action: order_form
      - active_loop: null
      - action: action_check_order
    """
    flows = flows_of(convert(mini_project(stories=stories)))
    assert flows["order_form"]["nlu_trigger"] == [{"intent": "order_status"}]
