"""The fixture Rasa project converted: flows, domain, NLU data, config and tests."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bot.rasa_import.convert import Conversion


def _load(conversion: Conversion, name: str) -> Any:
    return yaml.safe_load(conversion.files[name])


@pytest.fixture(scope="module")
def flows(conversion: Conversion) -> dict[str, Any]:
    return _load(conversion, "flows/flows.yml")["flows"]


@pytest.fixture(scope="module")
def domain(conversion: Conversion) -> dict[str, Any]:
    return _load(conversion, "flows/domain.yml")


def test_the_project_has_helpline_s_layout(conversion: Conversion) -> None:
    assert sorted(conversion.files) == [
        "flows/domain.yml",
        "flows/flows.yml",
        "flows/nlu.yml",
        "flows/tests/e2e_rules.yml",
        "flows/tests/e2e_stories.yml",
        "helpline.yml",
    ]


def test_intent_rules_become_flows_with_an_nlu_trigger(flows: dict[str, Any]) -> None:
    greet = flows["greet"]
    assert greet["nlu_trigger"] == [{"intent": "greet"}]
    assert greet["steps"] == [{"action": "utter_greet"}]
    assert "rules.yml:4" in greet["description"]
    assert flows["order_status"]["steps"] == [{"action": "action_check_order"}]


def test_a_rule_condition_becomes_a_guard_that_is_tried_first(flows: dict[str, Any]) -> None:
    ids = list(flows)
    guarded = flows["shipping_info_2"]
    assert guarded["if"] == 'slots.customer_tier = "gold"'
    assert guarded["steps"] == [{"action": "utter_free_shipping"}]
    assert ids.index("shipping_info_2") < ids.index("shipping_info")


def test_a_rule_without_waiting_is_joined_with_its_continuation(flows: dict[str, Any]) -> None:
    assert flows["mood_unhappy"]["steps"] == [
        {"action": "utter_cheer_up"},
        {"action": "utter_did_that_help"},
    ]


def test_forms_become_flows_of_collect_steps(flows: dict[str, Any]) -> None:
    form = flows["return_form"]
    assert form["nlu_trigger"] == [{"intent": "return_item"}]
    assert form["steps"] == [
        {"action": "utter_return_policy"},
        {
            # A from_entity slot whose entity has a regex takes only that entity.
            "collect": "order_id",
            "reset_after_flow_ends": False,
            "rejections": [
                {
                    "if": 'not slots.order_id matches "(?:\\bORD-\\d{5}\\b)"',
                    "utter": "utter_invalid_order_id",
                }
            ],
        },
        {"collect": "return_reason", "reset_after_flow_ends": False},
        {
            "collect": "confirm_return",
            "reset_after_flow_ends": False,
            "utter": "utter_ask_return_form_confirm_return",
        },
        {"action": "action_submit_return"},
    ]
    feedback = flows["feedback_form"]
    assert feedback["nlu_trigger"] == [{"intent": "give_feedback"}]
    assert [s.get("collect") or s.get("action") for s in feedback["steps"]] == [
        "feedback_rating",
        "feedback_text",
        "action_save_feedback",
        "utter_thanks_feedback",
    ]


def test_an_intent_only_stories_handle_becomes_a_flow(flows: dict[str, Any]) -> None:
    assert flows["track_package"]["steps"] == [{"action": "utter_tracking_link"}]
    assert "stories.yml" in flows["track_package"]["description"]


def test_flows_end_quietly_as_a_rasa_bot_does(flows: dict[str, Any]) -> None:
    assert flows["pattern_completed"]["steps"] == [{"noop": True}]


def test_responses_keep_variations_buttons_and_slot_conditions(domain: dict[str, Any]) -> None:
    responses = domain["responses"]
    assert len(responses["utter_goodbye"]) == 3
    greet = responses["utter_greet"]
    assert len(greet) == 3  # the Slack-only variation is dropped
    assert greet[2]["condition"] == [{"type": "slot", "name": "customer_tier", "value": "gold"}]
    assert [b["payload"] for b in responses["utter_shipping_info"][0]["buttons"]] == [
        "/track_package",
        "/order_status",
    ]
    assert responses["utter_cheer_up"][0]["text"].startswith("I'm sorry")
    assert responses["utter_invalid_order_id"] == [
        {"text": "Sorry, that doesn't look like a valid order id."}
    ]


def test_slots_keep_types_and_initial_values(domain: dict[str, Any]) -> None:
    slots = domain["slots"]
    assert slots["customer_tier"] == {
        "type": "categorical",
        "initial_value": "standard",
        "values": ["standard", "gold"],
    }
    assert slots["confirm_return"] == {"type": "bool"}
    assert "requested_slot" not in slots
    assert all("influence_conversation" not in s and "mappings" not in s for s in slots.values())


def test_custom_actions_are_listed_for_the_validator(domain: dict[str, Any]) -> None:
    assert domain["actions"] == [
        "action_check_order",
        "action_submit_return",
        "action_save_feedback",
        "validate_return_form",
    ]


def test_nlu_keeps_examples_synonyms_regexes_and_lookups(conversion: Conversion) -> None:
    items = _load(conversion, "flows/nlu.yml")["nlu"]
    by_kind: dict[str, dict[str, str]] = {}
    for item in items:
        kind = next(k for k in item if k != "examples")
        by_kind.setdefault(kind, {})[item[kind]] = item["examples"]
    assert len(by_kind["intent"]) == 15
    assert all(block.count("\n- ") >= 7 for block in by_kind["intent"].values())
    assert "- do you take [PayPal](payment_method:paypal)?" in by_kind["intent"]["payment_methods"]
    assert by_kind["synonym"]["credit card"].splitlines() == [
        "- credit cards",
        "- Visa",
        "- Mastercard",
        "- cc",
    ]
    assert by_kind["regex"]["order_id"] == "- \\bORD-\\d{5}\\b\n"
    # Rasa learned entities from annotations too: lookup tables get the annotated
    # values and the synonyms, and an entity with neither regex nor lookup gets one.
    assert by_kind["lookup"]["payment_method"].splitlines() == [
        "- credit card",
        "- debit card",
        "- paypal",
        "- apple pay",
        "- gift card",
        "- credit cards",
        "- Visa",
        "- Mastercard",
        "- cc",
        "- pay pal",
    ]
    assert by_kind["lookup"]["product"].splitlines() == [
        "- jacket",
        "- boots",
        "- sweater",
        "- backpack",
        "- tent",
    ]
    assert "order_id" not in by_kind["lookup"]


def test_the_action_endpoint_goes_to_helpline_yml(conversion: Conversion) -> None:
    config = _load(conversion, "helpline.yml")
    assert config["bot"] == {"path": "flows"}
    assert config["actions"]["endpoint"] == (
        "${HELPLINE_ACTION_ENDPOINT:-http://localhost:5055/webhook}"
    )
    assert config["llm"] == {"enabled": False}


def test_linear_stories_become_e2e_tests(conversion: Conversion) -> None:
    cases = {
        c["test_case"]: c["steps"]
        for c in _load(conversion, "flows/tests/e2e_stories.yml")["test_cases"]
    }
    assert sorted(cases) == [
        "story_ask_about_paying_with_paypal",
        "story_give_feedback",
        "story_greet_store_hours_thanks",
        "story_look_an_order_up",
        "story_return_an_item",
        "story_return_an_item_asking_for_the_store_hours_in_between",
        "story_track_a_package_after_asking_about_shipping",
        "story_track_a_package_straight_away",
    ]
    assert cases["story_return_an_item"][:4] == [
        {"user": "I want to return an item"},
        {"utter": "utter_return_policy"},
        {"utter": "utter_ask_order_id"},
        {"user": "my order number is ORD-67890"},
    ]
    digression = cases["story_return_an_item_asking_for_the_store_hours_in_between"]
    assert digression[4:7] == [
        {"utter": "utter_store_hours"},
        {"utter": "utter_flow_continue_interrupted"},
        {"utter": "utter_ask_order_id"},
    ]
    assert cases["story_look_an_order_up"] == [
        {
            "user": "where is my order ORD-12345?",
            "assertions": [
                {"action_executed": "action_check_order"},
                {
                    "slot_was_set": [
                        {"name": "order_id", "value": "ORD-12345"},
                        {"name": "order_status", "value": "shipped"},
                    ]
                },
            ],
        }
    ]
