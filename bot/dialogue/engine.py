"""The flow engine: runs one user turn over the dialogue stack.

:meth:`Engine.handle` takes the state and the NLU's parse of one message,
chooses a command (:mod:`bot.dialogue.commands`), then runs steps until the
conversation waits for input or the stack is empty. Everything it does is
recorded as typed events.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from bot.dialogue import builtins
from bot.dialogue import desk as desk_module
from bot.dialogue.actions import apply_result
from bot.dialogue.answer import answer_open_ended
from bot.dialogue.commands import Command, decide
from bot.dialogue.events import (
    ActionExecuted,
    BotUttered,
    Event,
    FlowCompleted,
    FlowInterrupted,
    FlowResumed,
    FlowStarted,
    SlotSet,
    UserUttered,
)
from bot.dialogue.flows import END
from bot.dialogue.results import EngineSettings, TurnResult
from bot.dialogue.state import DialogueState, Frame
from bot.errors import ActionError, FlowError

if TYPE_CHECKING:
    from bot.dialogue.actions import ActionRunner
    from bot.dialogue.answer import Answerer
    from bot.dialogue.desk import Desk, DeskLoader
    from bot.dialogue.flows import Flow, Step
    from bot.dialogue.nlu import ParseResult
    from bot.dialogue.project import Project

__all__ = ["Engine", "EngineSettings", "HistoryLoader", "Turn", "TurnResult"]

#: Loads the conversation's earlier events when an action or answerer needs them.
HistoryLoader = Callable[[], Awaitable[Sequence[dict[str, Any]]]]

_LOGGER = logging.getLogger(__name__)
MAX_STEPS_PER_TURN = 500
MAX_FOLLOWUPS_PER_TURN = 10
TOO_LONG = "rasa_internal_error_user_input_too_long"
EMPTY = "rasa_internal_error_user_input_empty"
ACTION_FAILED = "rasa_internal_error_default"


class Engine:
    """Runs turns of one bot project; stateless between calls."""

    def __init__(
        self,
        project: Project,
        actions: ActionRunner | None = None,
        answerer: Answerer | None = None,
        settings: EngineSettings | None = None,
    ) -> None:
        self.project = project
        self.actions = actions
        self.answerer = answerer
        self.settings = settings or EngineSettings()
        self.rng = random.Random(self.settings.seed)

    def new_state(self) -> DialogueState:
        """Return the state of a new conversation."""
        return DialogueState(self.project.domain.initial_slots())

    async def handle(
        self,
        state: DialogueState,
        parse: ParseResult,
        sender_id: str = "default",
        history: Sequence[dict[str, Any]] | HistoryLoader = (),
        metadata: dict[str, Any] | None = None,
        desk: Desk | DeskLoader | None = None,
        *,
        queued: bool = False,
    ) -> TurnResult:
        """Run one turn for the message ``parse.text``; ``state`` is not mutated.

        ``history`` holds the conversation's earlier events, or loads them on
        first use, so a turn that runs no custom action reads none. ``desk``
        says whether people can take a handoff (staffed when not given);
        ``queued``: the conversation waits, unclaimed, in the queue for a person.
        """
        turn = Turn(self, copy.deepcopy(state), parse, sender_id, history, metadata or {})
        turn._desk, turn.queued = desk or desk_module.STAFFED, queued
        await turn.run()
        return turn.result


class Turn:
    """The work of one turn; built and run by :meth:`Engine.handle`."""

    def __init__(
        self,
        engine: Engine,
        state: DialogueState,
        parse: ParseResult,
        sender_id: str,
        history: Sequence[dict[str, Any]] | HistoryLoader,
        metadata: dict[str, Any],
    ) -> None:
        self.engine = engine
        self.project = engine.project
        self.state = state
        self.parse = parse
        self.sender_id = sender_id
        self._history = history
        self.metadata = metadata
        self.result = TurnResult([], state)
        self._desk: Desk | DeskLoader = desk_module.STAFFED
        self.queued = False
        self.followups = 0
        if parse.intent is not None and not parse.out_of_scope:
            self.result.confidence = parse.intent.confidence

    # -- bookkeeping ---------------------------------------------------------

    async def history(self) -> Sequence[dict[str, Any]]:
        """Return the conversation's earlier events, loading them once."""
        if callable(self._history):
            self._history = tuple(await self._history())
        return self._history

    async def desk(self) -> Desk:
        """Return the support desk as this conversation sees it, working it out once."""
        if callable(self._desk):
            self._desk = await self._desk()
        return self._desk

    def emit(self, event: Event) -> None:
        """Record an event of this turn."""
        self.result.events.append(event)

    def set_slot(self, name: str, value: Any) -> None:
        """Set a slot and record it (no event when the value is unchanged)."""
        if self.state.slots.get(name, None) == value and name in self.state.slots:
            return
        self.state.slots[name] = value
        self.emit(SlotSet(name, value))

    def utter(self, name: str, context: dict[str, Any] | None = None) -> None:
        """Send the domain response ``name`` (logged when it is missing)."""
        variation = self.project.domain.pick(name, self.state.slots, context, self.engine.rng)
        if variation is None:
            _LOGGER.warning("Response %s is not in the domain.", name)
            return
        self.emit(BotUttered(variation.text, variation.buttons, name))

    def say(self, text: str, buttons: Sequence[dict[str, str]] = ()) -> None:
        """Send free text (from an action or an answerer)."""
        self.emit(BotUttered(text, tuple(buttons)))

    def push(self, flow_id: str, **context: Any) -> Frame:
        """Put a flow on top of the stack."""
        frame = Frame(flow_id, context=context)
        self.state.stack.append(frame)
        self.emit(FlowStarted(flow_id))
        return frame

    # -- the turn ------------------------------------------------------------

    async def run(self) -> None:
        """Run the turn: apply the message, then the stack."""
        text = self.parse.text
        self.emit(
            UserUttered(
                text,
                self.parse.intent.name if self.parse.intent else None,
                self.parse.intent.confidence if self.parse.intent else 0.0,
                tuple(e.to_dict() for e in self.parse.entities),
            )
        )
        user = self.state.top_user_frame()
        in_email_flow = user is not None and user.flow_id == desk_module.EMAIL_FLOW
        if not text.strip():
            self.push("pattern_internal_error", error_type=EMPTY)
        elif len(text) > self.engine.settings.max_message_chars:
            self.push("pattern_internal_error", error_type=TOO_LONG)
        elif not await desk_module.before_turn(self):
            await self.apply(decide(self.project, self.state, self.parse))
        await self.run_stack()
        desk_module.after_turn(self, in_email_flow)
        user = self.state.top_user_frame()
        if user is not None and self.result.flow_id is None:
            self.result.flow_id = user.flow_id

    async def apply(self, command: Command) -> None:
        """Carry out the command chosen for the message."""
        if command.kind == "fill":
            await self.fill(command)
        elif command.kind == "correct":
            user = self.state.top_user_frame()
            names = ", ".join(f"{k} to {v}" for k, v in command.slots.items())
            self.push(
                "pattern_correction",
                corrected_slots=names,
                corrections=dict(command.slots),
                target_flow=user.flow_id if user else None,
            )
        elif command.kind == "start" and command.flow_id is not None:
            self.start(command.flow_id, command.slots)
        elif command.kind == "cancel" and command.flow_id is not None:
            flow = self.project.flows[command.flow_id]
            self.push("pattern_cancel_flow", canceled_flow=flow.id, canceled_name=flow.title)
        elif command.kind == "handoff":
            self.push("pattern_human_handoff", reason="user_request")
        elif command.kind == "chitchat":
            self.push("pattern_chitchat")
        else:
            await self.open_ended()

    def start(self, flow_id: str, slots: dict[str, Any]) -> None:
        """Start a user flow, interrupting the one in progress."""
        current = self.state.top_user_frame()
        if current is not None:
            current.interrupted = True
            self.emit(FlowInterrupted(current.flow_id))
        self.push(flow_id)
        self.result.flow_id = flow_id
        for name, value in slots.items():
            self.set_slot(name, value)

    async def fill(self, command: Command) -> None:
        """Fill the slot being collected, checking type and rejections."""
        frame = self.state.top()
        assert frame is not None
        assert frame.step_id is not None
        flow = self.project.flows[frame.flow_id]
        step = flow.steps[frame.step_id]
        value = command.slots.get(step.value)
        for name, other in command.slots.items():
            if name != step.value and other is not None:
                self.set_slot(name, other)
        if value is None:
            if f"utter_invalid_{step.value}" in self.project.domain.responses:
                self.utter(f"utter_invalid_{step.value}")
            self.ask(step, frame)
            return
        self.set_slot(step.value, value)
        namespace = {"slots": self.state.slots, "context": frame.context}
        for rejection in step.rejections:
            if rejection.condition.evaluate(namespace):
                self.utter(rejection.utter)
                self.set_slot(step.value, None)
                self.ask(step, frame)
                return
        frame.waiting = False
        frame.step_id = self.next_of(step, frame)

    def ask(self, step: Step, frame: Frame) -> None:
        """Utter a collect's question and wait for the answer."""
        self.utter(step.utter or f"utter_ask_{step.value}", frame.context)
        frame.waiting = True

    async def open_ended(self) -> None:
        """Hand a message no flow handles to the answerer."""
        await answer_open_ended(self)

    # -- running the stack ---------------------------------------------------

    async def run_stack(self) -> None:
        """Run steps until the conversation waits for input or the stack empties."""
        for _ in range(MAX_STEPS_PER_TURN):
            frame = self.state.top()
            if frame is None or frame.waiting:
                return
            flow = self.project.flows[frame.flow_id]
            if frame.step_id is None:
                frame.step_id = flow.first
            if frame.step_id == END:
                self.finish(frame)
                continue
            await self.execute(frame, flow, flow.steps[frame.step_id])
        self.fail_to_internal_error(f"more than {MAX_STEPS_PER_TURN} steps in one turn")

    def next_of(self, step: Step, frame: Frame) -> str:
        """Return the step id (or ``END``) that follows ``step``."""
        namespace = {"slots": self.state.slots, "context": frame.context}
        for branch in step.next:
            if branch.condition is None or branch.condition.evaluate(namespace):
                return branch.target
        return END

    async def execute(self, frame: Frame, flow: Flow, step: Step) -> None:
        """Run one step of the frame on top of the stack."""
        if step.kind == "collect":
            if self.state.slots.get(step.value) is not None and not step.ask_before_filling:
                frame.step_id = self.next_of(step, frame)
            else:
                self.ask(step, frame)
            return
        if step.kind == "link":
            self.pop(frame, completed=True)
            new = self.push(step.value)
            new.called, new.interrupted = frame.called, frame.interrupted
            return
        if step.kind == "action":
            await self.run_action(frame, step.value)
            # The branch is chosen after the action, so it sees the slots it set;
            # a failed action has taken the frame off the stack.
            if any(f is frame for f in self.state.stack):
                frame.step_id = self.next_of(step, frame)
            return
        frame.step_id = self.next_of(step, frame)
        if step.kind == "set_slots":
            for name, value in step.value.items():
                self.set_slot(name, value)
        elif step.kind == "call":
            self.push(step.value).called = True

    async def run_action(self, frame: Frame, name: str) -> None:
        """Run an ``action`` step: a response, a built-in or a custom action."""
        self.emit(ActionExecuted(name))
        if name.startswith("utter_"):
            self.utter(name, frame.context)
            return
        handler = builtins.BUILTINS.get(name)
        try:
            if handler is not None:
                await handler(self, frame)
            else:
                await self.run_custom(name)
        except ActionError as exc:
            _LOGGER.warning("Action %s failed: %s", name, exc)
            self.fail_to_internal_error(str(exc))

    async def run_custom(self, name: str) -> None:
        """Run a custom action, apply its result, then run its follow-ups in the top frame."""
        runner = self.engine.actions
        if runner is None or not runner.has(name):
            raise ActionError(f"no action server knows '{name}'")
        context = builtins.action_context(self, name, await self.history())
        try:
            result = await asyncio.wait_for(
                runner.run(name, context), self.engine.settings.action_timeout_s
            )
        except TimeoutError as exc:
            raise ActionError(f"action '{name}' timed out") from exc
        for followup in apply_result(self, result):
            self.followups += 1
            if self.followups > MAX_FOLLOWUPS_PER_TURN:
                raise ActionError(f"over {MAX_FOLLOWUPS_PER_TURN} follow-up actions in a turn")
            await self.run_action(self.state.top() or Frame(followup), followup)

    def finish(self, frame: Frame) -> None:
        """End the top frame at its END and resume what lies beneath."""
        self.pop(frame, completed=True)
        top = self.state.top()
        if top is None:
            if not frame.is_pattern and not frame.called:
                title = self.project.flows[frame.flow_id].title
                self.push("pattern_completed", previous_flow_name=title)
            return
        top.waiting = False
        if top.interrupted and not frame.called and not top.is_pattern:
            top.interrupted = False
            self.emit(FlowResumed(top.flow_id))
            title = self.project.flows[top.flow_id].title
            self.push("pattern_continue_interrupted", previous_flow_name=title)

    def pop(self, frame: Frame, completed: bool) -> None:
        """Remove ``frame`` from the stack and reset its flow's slots."""
        self.state.stack.remove(frame)
        if completed:
            self.emit(FlowCompleted(frame.flow_id))
        flow = self.project.flows[frame.flow_id]
        if flow.is_pattern:
            return
        for name in flow.resettable_slots():
            initial = self.project.domain.slots[name].initial_value
            self.set_slot(name, initial)

    def fail_to_internal_error(self, reason: str) -> None:
        """Cancel the running user flow and run ``pattern_internal_error``."""
        _LOGGER.warning("Turn failed, running pattern_internal_error: %s", reason)
        if any(f.flow_id == "pattern_internal_error" for f in self.state.stack):
            raise FlowError(
                "pattern_internal_error", None, f"internal error while handling: {reason}"
            )
        builtins.cancel_top_user_flow(self)
        self.push("pattern_internal_error", error_type=ACTION_FAILED, reason=reason)
