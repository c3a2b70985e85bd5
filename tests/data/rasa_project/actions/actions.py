"""Custom actions of the Acme Outfitters Rasa assistant (run by rasa-sdk)."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

ORDERS = {"ORD-12345": "shipped", "ORD-67890": "delivered", "ORD-13579": "delivered"}


class ActionCheckOrder(Action):
    """Looks the order up and says its status."""

    def name(self) -> str:
        return "action_check_order"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        order_id = tracker.get_slot("order_id")
        if not order_id:
            dispatcher.utter_message(response="utter_need_order_id")
            return []
        status = ORDERS.get(str(order_id).upper(), "unknown")
        dispatcher.utter_message(text=f"Order {order_id} is {status}.")
        return [SlotSet("order_status", status)]


class ActionSubmitReturn(Action):
    """Opens the return and says its reference."""

    def name(self) -> str:
        return "action_submit_return"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        order_id = str(tracker.get_slot("order_id") or "")
        if not tracker.get_slot("confirm_return"):
            dispatcher.utter_message(text="Okay, I have not opened a return.")
            return []
        return_id = "RET-" + order_id.removeprefix("ORD-")
        dispatcher.utter_message(
            text=f"Your return {return_id} for order {order_id} is open. "
            "We'll email you a prepaid label."
        )
        return [SlotSet("return_id", return_id)]


class ActionSaveFeedback(Action):
    """Stores the feedback (here: nowhere) and says nothing itself."""

    def name(self) -> str:
        return "action_save_feedback"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        return []


class ValidateReturnForm(FormValidationAction):
    """Checks the order number's format while the return form runs."""

    def name(self) -> str:
        return "validate_return_form"

    def validate_order_id(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if re.fullmatch(r"ORD-\d{5}", str(slot_value or "")):
            return {"order_id": slot_value}
        dispatcher.utter_message(text="That doesn't look like an order number.")
        return {"order_id": None}
