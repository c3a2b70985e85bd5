"""Actions for the real rasa-sdk action servers used by the tests.

This module runs inside .venv-rasa (rasa-sdk 3.6, Python 3.10) and
.venv-rasa-sdk (rasa-sdk 3.21) with ``python -m rasa_sdk --actions actions``,
never in the platform venv. Each action echoes what it read from the tracker,
so the tests also check that the request Helpline sends is a valid tracker.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from rasa_sdk import Action, ActionExecutionRejection, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    AllSlotsReset,
    BotUttered,
    FollowupAction,
    ReminderScheduled,
    Restarted,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher

#: Longer than any timeout the tests give the registry.
SLOW_SECONDS = 30.0

Events = list[dict[str, Any]]


class ActionLookUpOrder(Action):
    """Sets a slot and utters text with buttons, built from the tracker."""

    def name(self) -> str:
        return "action_look_up_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> Events:
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


class ActionReadTracker(Action):
    """Reports what rasa-sdk's Tracker API reads from Helpline's tracker."""

    def name(self) -> str:
        return "action_read_tracker"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> Events:
        last_bot = tracker.get_last_event_for("bot") or {}
        last_user = tracker.get_last_event_for("user") or {}
        seen = {
            "order_id": tracker.get_slot("order_id"),
            "text": tracker.latest_message.get("text"),
            "intent": tracker.get_intent_of_latest_message(),
            "entities": list(tracker.get_latest_entity_values("order_id")),
            "user_events": sum(1 for e in tracker.events if e.get("event") == "user"),
            "applied_events": len(tracker.applied_events()),
            "last_bot_text": last_bot.get("text"),
            "last_user_intent": last_user.get("parse_data", {}).get("intent", {}).get("name"),
            "input_channel": tracker.get_latest_input_channel(),
            "active_loop": tracker.active_loop_name,
            "state_sender": tracker.current_state()["sender_id"],
        }
        return [SlotSet("seen", seen)]


class ActionUtterResponse(Action):
    """Utters a domain response by name with a variable, then an image."""

    def name(self) -> str:
        return "action_utter_response"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> Events:
        dispatcher.utter_message(response="utter_order_help", order_id="A-17")
        dispatcher.utter_message(image="https://example.invalid/label.png")
        return []


class ActionFollowup(Action):
    """Says it looks the order up and asks for the look-up to run next."""

    def name(self) -> str:
        return "action_followup"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> Events:
        dispatcher.utter_message(text="Let me look that up.")
        return [FollowupAction("action_look_up_order")]


class ActionLoop(Action):
    """Asks for itself to run next, forever."""

    def name(self) -> str:
        return "action_loop"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> Events:
        return [FollowupAction("action_loop")]


class ActionRemind(Action):
    """Schedules a reminder, which Helpline does not support, and says so."""

    def name(self) -> str:
        return "action_remind"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> Events:
        dispatcher.utter_message(text="I will remind you tomorrow.")
        when = datetime.datetime(2030, 1, 2, 9, 0)  # naive: the 3.6 venv is Python 3.10
        return [ReminderScheduled("EXTERNAL_remind", when, name="order_reminder")]


class ActionRestart(Action):
    """Starts the conversation over."""

    def name(self) -> str:
        return "action_restart_conversation"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> Events:
        dispatcher.utter_message(text="Starting over.")
        return [Restarted()]


class ActionResetSlots(Action):
    """Resets every slot, then sets one and clears another."""

    def name(self) -> str:
        return "action_reset_slots"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> Events:
        return [AllSlotsReset(), SlotSet("order_status", "fresh"), SlotSet("greeted", None)]


class ActionReject(Action):
    """Refuses to run, as a validation action does with bad input."""

    def name(self) -> str:
        return "action_reject"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> Events:
        raise ActionExecutionRejection("action_reject", "the order id is not one of ours")


class ActionExplode(Action):
    """Raises, as a buggy action would."""

    def name(self) -> str:
        return "action_explode"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> Events:
        raise RuntimeError("warehouse database is on fire")


class ActionSlow(Action):
    """Takes far longer than the registry's timeout in the tests."""

    def name(self) -> str:
        return "action_slow"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> Events:
        await asyncio.sleep(SLOW_SECONDS)
        dispatcher.utter_message(text="finally")
        return []
