"""Rules: which become flows, which are joined or covered, which need a human."""

from __future__ import annotations

from bot.rasa_import.convert import convert

from .conftest import MiniProject, findings, flows_of


def test_slot_conditions_become_guards(mini_project: MiniProject) -> None:
    rules = """
    rules:
    - rule: hours
      steps:
      - intent: ask_hours
      - action: utter_hours
      - action: action_listen
    - rule: vip hours
      condition:
      - slot_was_set:
        - vip: true
        - order_id: A-1
      steps:
      - intent: ask_hours
      - action: utter_vip_hours
    """
    flows = flows_of(convert(mini_project(rules=rules)))
    assert list(flows)[:2] == ["ask_hours_2", "ask_hours"]
    assert flows["ask_hours_2"]["if"] == 'slots.vip and slots.order_id = "A-1"'
    assert flows["ask_hours"]["steps"] == [{"action": "utter_hours"}]


def test_rules_that_need_a_human(mini_project: MiniProject) -> None:
    rules = """
    rules:
    - rule: first
      steps:
      - intent: greet
      - action: utter_greet
    - rule: second greet
      steps:
      - intent: greet
      - action: utter_happy
    - rule: two turns
      steps:
      - intent: affirm
      - action: utter_happy
      - intent: deny
      - action: utter_sad
    - rule: fallback
      steps:
      - intent: deny
      - action: action_default_fallback
    - rule: dangling
      steps:
      - intent: goodbye
      - action: utter_goodbye
      wait_for_user_input: false
    - rule: orphan continuation
      steps:
      - action: utter_sad
      - action: utter_happy
    - rule: inside the form
      condition:
      - active_loop: order_form
      steps:
      - intent: deny
      - action: action_deactivate_loop
      - active_loop: null
    """
    conversion = convert(mini_project(rules=rules))
    human = findings(conversion, "rule", "needs_human")
    assert human["second greet"] == "the flow greet already answers the intent 'greet'"
    assert human["two turns"].startswith("a rule with more than one user turn")
    assert "Rasa's 'action_default_fallback' has no Helpline twin" in human["fallback"]
    assert human["dangling"].startswith("wait_for_user_input: false")
    assert "utter_sad" in human["orphan continuation"]
    assert "not its submission" in human["inside the form"]
    # A dangling rule still converts what it can.
    assert flows_of(conversion)["goodbye"]["steps"] == [{"action": "utter_goodbye"}]


def test_an_entity_condition_is_reported_as_dropped(mini_project: MiniProject) -> None:
    rules = """
    rules:
    - rule: status with a number
      steps:
      - intent: order_status
        entities:
        - order_id
      - action: action_check_order
    """
    conversion = convert(mini_project(rules=rules))
    assert findings(conversion, "rule", "unsupported") == {
        "status with a number": "its entity condition is dropped"
    }
    assert flows_of(conversion)["order_status"]["steps"] == [{"action": "action_check_order"}]


def test_alternative_intents_become_several_triggers(mini_project: MiniProject) -> None:
    rules = """
    rules:
    - rule: bye or no
      steps:
      - or:
        - intent: goodbye
        - intent: deny
      - action: utter_goodbye
    - rule: start the form
      steps:
      - or:
        - intent: order_status
        - intent: inform
      - action: order_form
      - active_loop: order_form
    - rule: with no form active
      condition:
      - active_loop: null
      steps:
      - intent: ask_hours
      - action: utter_hours
    - rule: unsure
      steps:
      - intent: nlu_fallback
      - action: utter_sad
    """
    conversion = convert(mini_project(rules=rules))
    flows = flows_of(conversion)
    assert flows["goodbye"]["nlu_trigger"] == [{"intent": "goodbye"}, {"intent": "deny"}]
    assert flows["order_form"]["nlu_trigger"] == [{"intent": "order_status"}, {"intent": "inform"}]
    assert "if" not in flows["ask_hours"]
    # Rasa's low-confidence intent is Helpline's cannot-handle pattern.
    assert flows["pattern_cannot_handle"]["steps"] == [{"action": "utter_sad"}]
    assert "nlu_trigger" not in flows["pattern_cannot_handle"]
    assert findings(conversion, "rule", "needs_human") == {}
