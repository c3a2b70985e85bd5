"""Checking stories against the converted flows, and turning linear ones into tests.

A story maps cleanly when each of its user turns runs what a converted flow
runs for that intent: a rule's actions, a form's questions and submission, a
digression inside a form, or actions that every story agrees on for an
intent no rule handles (those become new flows). A story with ``or`` steps
stands for one story per alternative, and maps when each of them does.
Checkpoints, and intents followed by different actions in different places
(the story branches on the conversation so far), need a human.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.rasa_import.e2e import E2EWriter, slug
from bot.rasa_import.plan import FlowPlan, action_steps, flow_spec, unique_id

if TYPE_CHECKING:
    from bot.rasa_import.plan import FormPlan
    from bot.rasa_import.reader import Where
    from bot.rasa_import.report import Report, Status
    from bot.rasa_import.steps import Block, Step

CONTINUE = "utter_flow_continue_interrupted"
#: The most stories that one story's ``or`` steps may stand for.
MAX_VARIANTS = 16


class Mismatch(Exception):
    """A story step that no converted flow reproduces, and where it is."""

    def __init__(self, where: Where, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass
class Turn:
    """One user message of a story and what follows it."""

    intent: Step
    events: list[Step] = field(default_factory=list)

    @property
    def actions(self) -> list[str]:
        """The actions of the turn, without ``action_listen``."""
        return [
            str(s.value) for s in self.events if s.kind == "action" and s.value != "action_listen"
        ]

    def slots(self) -> dict[str, Any]:
        """The slot values the story sets in this turn."""
        found: dict[str, Any] = {}
        for step in self.events:
            if step.kind == "slot_was_set":
                for entry in step.value or []:
                    if isinstance(entry, dict):
                        found.update({str(k): v for k, v in entry.items()})
        return found

    def closes_form(self) -> bool:
        """Whether the form ends in this turn (``active_loop: null``)."""
        return any(s.kind == "active_loop" and s.value is None for s in self.events)


def variants(story: Block) -> list[list[Step]]:
    """Return the story's steps once per combination of its ``or`` alternatives.

    Raises:
        Mismatch: The alternatives make more than :data:`MAX_VARIANTS` stories.
    """
    combos: list[list[Step]] = [[]]
    for step in story.steps:
        options = list(step.value) if step.kind == "or" else [step]
        combos = [[*combo, option] for combo in combos for option in options]
        if len(combos) > MAX_VARIANTS:
            raise Mismatch(step.where, f"'or' makes more than {MAX_VARIANTS} stories of one")
    return combos


def split(steps: list[Step]) -> list[Turn]:
    """Cut a story's steps (without ``or``) into user turns.

    Raises:
        Mismatch: It has checkpoints, or starts with a bot action.
    """
    turns: list[Turn] = []
    for step in steps:
        if step.kind == "checkpoint":
            raise Mismatch(step.where, "checkpoints are not supported in flows")
        if step.kind == "intent":
            turns.append(Turn(step))
        elif not turns:
            raise Mismatch(step.where, "the story starts with a bot step, not a user message")
        else:
            turns[-1].events.append(step)
    return turns


class _Story:
    """Replays one story against the flows, collecting its e2e steps."""

    def __init__(self, checker: StoryChecker) -> None:
        self.checker = checker
        self.form: FormPlan | None = None
        self.filled: set[str] = set()
        self.steps: list[dict[str, Any]] = []
        self.used: set[str] = set()
        self.testable = True

    def run(self, turns: list[Turn]) -> None:
        for turn in turns:
            form = self.form
            requested = form.next_slot(self.filled) if form else None
            text = self.text(turn, form, requested)
            expected = self.inside(turn) if form else self.outside(turn)
            if text is None:
                self.testable = False
            else:
                self.steps += self.checker.writer.turn(text, expected, turn.slots())

    def text(self, turn: Turn, form: FormPlan | None, requested: str | None) -> str | None:
        if turn.intent.user:
            return turn.intent.user
        value = turn.slots().get(requested) if requested else None
        if form and requested in form.text_slots and isinstance(value, str):
            return value
        return self.checker.writer.user_text(str(turn.intent.value), turn.intent.entities)

    def fill(self, turn: Turn, form: FormPlan) -> list[str]:
        self.filled |= set(turn.intent.entities) & set(form.slots)
        after = form.next_slot(self.filled)
        if after is None or turn.closes_form():
            self.form = None
            return []
        self.form = form
        return [form.asks[after]]

    def outside(self, turn: Turn) -> list[str]:
        flow = self.checker.flow_for(turn)
        self.used.add(flow.flow_id)
        actions = turn.actions
        if flow.form is None:
            if actions != flow.actions:
                raise Mismatch(
                    turn.intent.where,
                    f"'{turn.intent.value}' runs {actions} here but "
                    f"{flow.actions} in the flow {flow.flow_id}",
                )
            return actions
        form = flow.form
        head = [*form.pre, form.name]
        if actions[: len(head)] != head:
            raise Mismatch(turn.intent.where, f"expected {head} to start {form.name}")
        asks = self.fill(turn, form)
        return self.submitted(turn, form, form.pre, asks, len(head))

    def submitted(
        self, turn: Turn, form: FormPlan, before: list[str], asks: list[str], at: int
    ) -> list[str]:
        if self.form is not None:
            return [*before, *asks]
        rest = turn.actions[at:]
        if rest != form.submit:
            raise Mismatch(
                turn.intent.where,
                f"{form.name} ends with {rest} here but {form.submit} in its flow",
            )
        return [*before, *rest]

    def inside(self, turn: Turn) -> list[str]:
        form = self.form
        assert form is not None
        actions = turn.actions
        requested = form.next_slot(self.filled)
        if actions[:1] == [form.name] and requested is not None:
            self.filled.add(requested)
            return self.submitted(turn, form, [], self.fill(turn, form), 1)
        flow = self.checker.flows.get(str(turn.intent.value))
        if flow is not None and flow.form is None and actions == [*flow.actions, form.name]:
            self.used.add(flow.flow_id)
            return [*flow.actions, CONTINUE, form.asks[requested or form.slots[-1]]]
        raise Mismatch(
            turn.intent.where, f"inside {form.name}, '{turn.intent.value}' runs {actions}"
        )


class StoryChecker:
    """Checks every story, adds flows for intents only stories handle, writes tests."""

    def __init__(
        self, flows: list[FlowPlan], writer: E2EWriter, taken: set[str], report: Report
    ) -> None:
        self.flows = {i: f for f in flows if not f.guarded for i in f.intents}
        self.guarded = {i for f in flows if f.guarded for i in f.intents}
        self.writer = writer
        self.taken = taken
        self.report = report
        self.conflicts: dict[str, str] = {}
        self.new_flows: list[FlowPlan] = []
        self.cases: list[dict[str, Any]] = []

    def flow_for(self, turn: Turn) -> FlowPlan:
        """Return the unguarded flow of the turn's intent.

        Raises:
            Mismatch: Stories disagree on the intent, or no flow handles it.
        """
        intent = str(turn.intent.value)
        if intent in self.conflicts:
            raise Mismatch(turn.intent.where, self.conflicts[intent])
        if intent not in self.flows:
            why = "only under rule conditions" if intent in self.guarded else "nowhere"
            raise Mismatch(turn.intent.where, f"'{intent}' is handled {why}")
        return self.flows[intent]

    def learn(self, stories: list[Block]) -> None:
        """Make flows for intents that no rule or form handles but stories agree on."""
        seen: dict[str, dict[tuple[str, ...], list[str]]] = {}
        for turns in self._turn_lists(stories):
            in_form = False
            for turn in turns:
                intent = str(turn.intent.value)
                starts = intent in self.flows and self.flows[intent].form is not None
                if not in_form and not starts and intent not in self.flows and turn.actions:
                    seen.setdefault(intent, {}).setdefault(tuple(turn.actions), []).append(
                        str(turn.intent.where)
                    )
                in_form = (in_form or starts) and not turn.closes_form()
        for intent, variants in seen.items():
            if len(variants) > 1:
                places = " but ".join(f"{list(a)} at {', '.join(w)}" for a, w in variants.items())
                self.conflicts[intent] = (
                    f"'{intent}' is followed by {places}: what the bot does depends on "
                    "the conversation so far"
                )
            else:
                self.add_flow(intent, list(next(iter(variants))), next(iter(variants.values())))

    @staticmethod
    def _turn_lists(stories: list[Block]) -> list[list[Turn]]:
        """Return the turns of every story variant that can be split into turns."""
        found = []
        for story in stories:
            try:
                found += [split(steps) for steps in variants(story)]
            except Mismatch:
                continue
        return found

    def add_flow(self, intent: str, actions: list[str], places: list[str]) -> None:
        """Add a flow for an intent that only stories handle."""
        flow_id = unique_id(intent, self.taken)
        description = f"Imported from Rasa stories ({', '.join(places[:3])})."
        spec = flow_spec(intent.replace("_", " "), description, [intent], action_steps(actions))
        plan = FlowPlan(flow_id, spec, [intent], actions)
        self.flows[intent] = plan
        self.new_flows.append(plan)

    def check(self, story: Block, names: set[str]) -> None:
        """Check one story and, when it maps cleanly, write its e2e tests (one per variant)."""
        replays = []
        try:
            for steps in variants(story):
                replay = _Story(self)
                replay.run(split(steps))
                replays.append(replay)
        except Mismatch as exc:
            reason = f"{exc.reason} (story at line {story.where.line})"
            self.report.add("story", story.name, "needs_human", exc.where, reason)
            return
        learned = {f.flow_id for f in self.new_flows}
        status: Status = "converted" if any(r.used & learned for r in replays) else "covered"
        if not all(r.testable for r in replays):
            reason = "no e2e test: an intent has no example"
            self.report.add("story", story.name, status, story.where, reason)
            return
        made = []
        for replay in replays:
            name = unique_id(f"story_{slug(story.name)}", names)
            self.cases.append({"test_case": name, "steps": replay.steps})
            self.report.add("e2e_test", name, "converted", story.where)
            made.append(name)
        label = "e2e test" if len(made) == 1 else "e2e tests ('or' expanded)"
        self.report.add("story", story.name, status, story.where, f"{label} {', '.join(made)}")
