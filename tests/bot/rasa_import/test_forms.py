"""Forms: triggers and submissions from rules or stories, asks, and what is reported."""

from __future__ import annotations

import yaml

from bot.rasa_import.convert import convert

from .conftest import DOMAIN, MiniProject, findings, flows_of


def test_a_form_started_and_ended_only_in_stories(mini_project: MiniProject) -> None:
    stories = """
    stories:
    - story: order
      steps:
      - intent: order_status
      - action: utter_greet
      - action: order_form
      - active_loop: order_form
      - intent: inform
        entities:
        - order_id: A-2
      - action: order_form
      - active_loop: null
      - action: action_check_order
      - action: utter_goodbye
    """
    conversion = convert(mini_project(stories=stories))
    flow = flows_of(conversion)["order_form"]
    assert flow["nlu_trigger"] == [{"intent": "order_status"}]
    assert flow["steps"] == [
        {"action": "utter_greet"},
        {"collect": "order_id", "reset_after_flow_ends": False},
        {"action": "action_check_order"},
        {"action": "utter_goodbye"},
    ]
    assert findings(conversion, "story", "covered") == {"order": "e2e test story_order"}


def test_a_form_nobody_starts_and_nothing_asks_for(mini_project: MiniProject) -> None:
    domain = DOMAIN.replace('  utter_ask_order_id:\n    - text: "Order number?"\n', "").replace(
        "  - action_check_order\n", "  - action_check_order\n  - action_ask_order_id\n"
    )
    conversion = convert(mini_project(domain=domain))
    reasons = [f.reason for f in conversion.report.with_status("needs_human")]
    assert reasons == [
        "no rule or story activates it: the flow has no nlu_trigger",
        "slot 'order_id' is asked by an action_ask_ action: a placeholder asks now",
    ]
    responses = yaml.safe_load(conversion.files["flows/domain.yml"])["responses"]
    assert responses["utter_ask_order_id"] == [{"text": "Please tell me the order id."}]
    assert "nlu_trigger" not in flows_of(conversion)["order_form"]


def test_rasa_2_required_slots_and_validation_actions(mini_project: MiniProject) -> None:
    domain = DOMAIN.replace(
        "required_slots: [order_id]",
        "required_slots:\n      order_id:\n        - type: from_entity\n          entity: order_id",
    ).replace("  - action_check_order\n", "  - action_check_order\n  - validate_order_form\n")
    conversion = convert(mini_project(domain=domain))
    reasons = [f.reason for f in conversion.report.findings if f.kind == "form"]
    assert any("Rasa 2 style" in r for r in reasons)
    assert any(r.startswith("validate_order_form ran after every answer") for r in reasons)
