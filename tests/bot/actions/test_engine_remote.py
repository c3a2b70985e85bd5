"""Flows that call actions on a real rasa-sdk action server."""

from __future__ import annotations

from pathlib import Path

from bot.actions import ActionRegistry
from bot.dialogue.engine import Engine, EngineSettings
from bot.dialogue.nlu import Intent, ParseResult
from bot.dialogue.project import load_project

DOMAIN = """
actions: [action_look_up_order, action_explode]
slots:
  order_id: {type: text}
  order_status: {type: text}
  last_action_seen: {type: any}
  domain_slots: {type: any}
responses:
  utter_ask_order_id:
    - text: "Which order?"
  utter_status:
    - text: "Status: {order_status}."
flows:
  track:
    description: Look an order up on the action server.
    nlu_trigger:
      - intent: track
    persisted_slots: [order_status]
    steps:
      - collect: order_id
      - action: action_look_up_order
      - action: utter_status
  explode:
    description: Run an action that raises on the server.
    nlu_trigger:
      - intent: explode
    steps:
      - action: action_explode
      - action: utter_status
"""


def parse(text: str, intent: str | None = None) -> ParseResult:
    found = Intent(intent, 1.0) if intent else None
    return ParseResult(text, found, (found,) if found else ())


async def test_remote_action_in_a_flow(rasa_sdk_server: str, tmp_path: Path) -> None:
    (tmp_path / "bot.yml").write_text(DOMAIN)
    project = load_project(tmp_path)
    registry = ActionRegistry(
        endpoint=f"{rasa_sdk_server}/webhook", domain=project.domain.to_rasa()
    )
    async with registry:
        engine = Engine(project, registry, None, EngineSettings(seed=1))
        state = engine.new_state()
        first = await engine.handle(state, parse("track my order", "track"), "cust-7")
        result = await engine.handle(first.state, parse("A-17", "inform"), "cust-7")
        texts = [r.text for r in result.replies]
        assert texts[0] == "Order A-17 for cust-7 (inform) has shipped."
        assert result.replies[0].buttons == (
            {"title": "Track it", "payload": "/track"},
            {"title": "Thanks", "payload": "/thanks"},
        )
        assert texts[1:3] == ["Anything else?", "Status: shipped."]
        assert result.state.slots["order_status"] == "shipped"
        assert "order_id" in result.state.slots["domain_slots"]

        failed = await engine.handle(result.state, parse("boom", "explode"), "cust-7")
        assert [r.response for r in failed.replies] == ["utter_internal_error_rasa"]
        assert failed.state.stack == []
