"""Actions for the real rasa-sdk action server used by the tests.

This module runs inside .venv-rasa-sdk (``python -m rasa_sdk --actions actions``),
never in the platform venv. Each action echoes what it read from the tracker,
so the tests also check that the request Helpline sends is a valid tracker.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, BotUttered, SlotSet
from rasa_sdk.executor import CollectingDispatcher

#: Longer than any timeout the tests give the registry.
SLOW_SECONDS = 30.0


class ActionLookUpOrder(Action):
    """Sets a slot and utters text with buttons, built from the tracker."""

    def name(self) -> str:
        return "action_look_up_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        order_id = tracker.get_slot("order_id")
        intent = tracker.get_intent_of_latest_message()
        dispatcher.utter_message(
            text=f"Order {order_id} for {tracker.sender_id} ({intent}) has shipped.",
            buttons=[
                {"title": "Track it", "payload": "/track"},
                {"title": "Thanks", "payload": "/thanks"},
            ],
        )
        return [
            SlotSet("order_status", "shipped"),
            SlotSet("last_action_seen", tracker.latest_action_name),
            SlotSet("domain_slots", sorted(domain.get("slots", {}))),
            BotUttered("Anything else?", data={"buttons": [{"title": "No", "payload": "/deny"}]}),
            ActionExecuted("action_listen"),
        ]


class ActionUtterResponse(Action):
    """Utters a domain response by name with a variable, then an image."""

    def name(self) -> str:
        return "action_utter_response"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_order_help", order_id="A-17")
        dispatcher.utter_message(image="https://example.invalid/label.png")
        return []


class ActionExplode(Action):
    """Raises, as a buggy action would."""

    def name(self) -> str:
        return "action_explode"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        raise RuntimeError("warehouse database is on fire")


class ActionSlow(Action):
    """Takes far longer than the registry's timeout in the tests."""

    def name(self) -> str:
        return "action_slow"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        await asyncio.sleep(SLOW_SECONDS)
        dispatcher.utter_message(text="finally")
        return []
