"""Slots, responses, intents, entities and NLU data that convert only in part."""

from __future__ import annotations

import yaml

from bot.rasa_import.convert import convert

from .conftest import DOMAIN, NLU, MiniProject, findings

EXTRA = """
  size:
    type: float
    min_value: 0
    max_value: 10
    mappings:
      - type: from_entity
        entity: number
  plan:
    type: categorical
    values: [basic, premium]
    mappings:
      - type: from_intent
        intent: affirm
        value: premium
  mood:
    type: addons.MoodSlot
    mappings:
      - type: from_trigger_intent
        intent: greet
        value: happy
"""


def test_slot_mappings_helpline_cannot_reproduce(mini_project: MiniProject) -> None:
    domain = DOMAIN.replace("responses:", EXTRA.lstrip("\n") + "responses:", 1)
    conversion = convert(mini_project(domain=domain))
    slots = yaml.safe_load(conversion.files["flows/domain.yml"])["slots"]
    assert slots["mood"] == {"type": "any"}
    assert slots["size"] == {"type": "float"}
    human = [(f.name, f.reason) for f in conversion.report.with_status("needs_human")]
    assert ("size", "fills from entity 'number': Helpline fills a slot from the entity of the "
            "same name, so rename one of them") in human  # fmt: skip
    assert any(name == "plan" and "from_intent" in why for name, why in human)
    assert ("mood", "custom slot type 'addons.MoodSlot' became 'any'") in human
    assert ("mood", "from_trigger_intent: use set_slots") in human
    assert findings(conversion, "slot", "unsupported") == {
        "size": "min_value/max_value are dropped"
    }


def test_rich_responses_and_retrieval_intents(mini_project: MiniProject) -> None:
    domain = DOMAIN.replace(
        "responses:",
        "responses:\n  utter_picture:\n    - image: https://example.invalid/a.png\n"
        "  utter_card:\n    - custom: {blocks: []}\n      channel: slack\n",
    ).replace("intents: [", "intents: [faq/returns, ")
    nlu = NLU + "- intent: faq/returns\n  examples: |\n    - can I return things?\n"
    nlu += "responses:\n  utter_faq/returns:\n    - text: Within 30 days.\n"
    conversion = convert(mini_project(domain=domain, nlu=nlu))
    responses = yaml.safe_load(conversion.files["flows/domain.yml"])["responses"]
    assert responses["utter_picture"] == [{"text": "https://example.invalid/a.png"}]
    assert responses["utter_card"] == [{"text": "utter_card"}]
    assert findings(conversion, "response", "needs_human") == {
        "utter_card": "no variation could be kept"
    }
    assert "faq/returns" in findings(conversion, "intent", "unsupported")
    assert findings(conversion, "nlu", "unsupported") == {
        "responses": "responses in training data (retrieval intents) are dropped"
    }
    nlu_items = yaml.safe_load(conversion.files["flows/nlu.yml"])["nlu"]
    assert all(item.get("intent") != "faq/returns" for item in nlu_items)


def test_an_entity_nothing_can_extract_is_reported(mini_project: MiniProject) -> None:
    domain = DOMAIN.replace("entities: [order_id]", "entities: [order_id, colour]")
    conversion = convert(mini_project(domain=domain))
    assert findings(conversion, "entity", "needs_human") == {
        "colour": "no regex, lookup table or annotated example: Helpline cannot extract it"
    }
    assert "order_id" in findings(conversion, "lookup", "note")


def test_examples_as_a_list_of_texts(mini_project: MiniProject) -> None:
    nlu = NLU + "- intent: greet\n  examples:\n    - text: hey there\n      metadata: {a: 1}\n"
    conversion = convert(mini_project(nlu=nlu))
    items = yaml.safe_load(conversion.files["flows/nlu.yml"])["nlu"]
    assert {"intent": "greet", "examples": "- hey there\n"} in items
