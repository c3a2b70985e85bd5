"""Converting forms: each form becomes a flow of ``collect`` steps.

The flow is triggered by the intents that activate the form in rules (or
stories), runs what those rules run before the form, collects the required
slots in order and ends with what the submission rule runs. Slots keep their
values after the flow ends, as a form's slots do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.errors import SourceError
from bot.rasa_import.plan import FlowPlan, FormPlan, action_steps, flow_spec, unique_id
from bot.rasa_import.rules import Activation, first_intents

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bot.rasa_import.reader import Entry, RasaProject
    from bot.rasa_import.report import Report
    from bot.rasa_import.rules import RuleResult
    from bot.rasa_import.steps import Block


def story_activations(stories: list[Block], forms: set[str]) -> dict[str, list[Activation]]:
    """Find ``intent → [actions] → form → active_loop: form`` turns in stories.

    Only where no form is active: a form action inside a form continues it.
    """
    found: dict[str, list[Activation]] = {}
    for story in stories:
        steps = story.steps
        active = None
        for index, step in enumerate(steps):
            if step.kind == "active_loop":
                active = step.value
            if step.kind != "action" or step.value not in forms or active is not None:
                continue
            start = index
            while start > 0 and steps[start - 1].kind == "action":
                start -= 1
            intents = first_intents(steps[start - 1]) if start > 0 else None
            for intent in intents or []:
                pre = tuple(str(s.value) for s in steps[start:index])
                activation = Activation(intent, pre, story.where)
                found.setdefault(str(step.value), []).append(activation)
    return found


def story_submission(stories: list[Block], form: str) -> list[str] | None:
    """Return the actions a story runs after ``form`` ends, if one shows it."""
    for story in stories:
        steps = story.steps
        for index, step in enumerate(steps[:-1]):
            if (step.kind, step.value) == ("action", form) and (
                steps[index + 1].kind,
                steps[index + 1].value,
            ) == ("active_loop", None):
                after = []
                for later in steps[index + 2 :]:
                    if later.kind == "intent":
                        break
                    if later.kind == "action":
                        after.append(str(later.value))
                return after
    return None


class _Form:
    """Converts one form."""

    def __init__(self, project: RasaProject, entry: Entry, report: Report) -> None:
        self.project = project
        self.entry = entry
        self.report = report
        self.name = entry.name

    def human(self, reason: str) -> None:
        self.report.add("form", self.name, "needs_human", self.entry.where, reason)

    def required(self) -> list[str]:
        spec = self.entry.spec if isinstance(self.entry.spec, dict) else {}
        required = spec.get("required_slots")
        if isinstance(required, dict):
            self.human("required_slots with their own mappings (Rasa 2 style) use the slots' own")
            required = list(required)
        if not isinstance(required, list) or not required:
            raise SourceError(
                self.entry.where.path,
                self.entry.where.line,
                f"form '{self.name}' needs required_slots",
            )
        slots = self.project.section("slots")
        for slot in required:
            if slot not in slots:
                raise SourceError(
                    self.entry.where.path,
                    self.entry.where.line,
                    f"form '{self.name}' requires the unknown slot '{slot}'",
                )
        if "ignored_intents" in spec:
            self.report.add(
                "form", self.name, "unsupported", self.entry.where, "ignored_intents is dropped"
            )
        return [str(s) for s in required]

    def ask(self, slot: str, responses: dict[str, list[dict[str, Any]]]) -> str:
        for name in (f"utter_ask_{self.name}_{slot}", f"utter_ask_{slot}"):
            if name in responses:
                return name
        actions = set(self.project.section("actions"))
        if {f"action_ask_{self.name}_{slot}", f"action_ask_{slot}"} & actions:
            self.human(f"slot '{slot}' is asked by an action_ask_ action: a placeholder asks now")
        else:
            self.human(f"no response asks for '{slot}': a placeholder asks now")
        name = f"utter_ask_{slot}"
        responses[name] = [{"text": f"Please tell me the {slot.replace('_', ' ')}."}]
        return name

    def mappings(self, slot: str) -> set[str]:
        spec = self.project.section("slots")[slot].spec
        spec = spec if isinstance(spec, dict) else {}
        return {str(m.get("type")) for m in spec.get("mappings") or [] if isinstance(m, dict)}


def _triggers(form: _Form, activations: list[Activation]) -> tuple[list[str], list[str]]:
    intents = list(dict.fromkeys(a.intent for a in activations))
    pres = {a.pre for a in activations}
    if len(pres) > 1:
        form.human("its activations run different actions first: the first one's are used")
    if not intents:
        form.human("no rule or story activates it: the flow has no nlu_trigger")
    return intents, list(activations[0].pre) if activations else []


def _collects(form: _Form, plan: FormPlan, sources: FormSources) -> list[dict[str, Any]]:
    """Return the collect steps of the form, noting how each slot is filled."""
    steps = []
    for slot in plan.slots:
        step: dict[str, Any] = {"collect": slot, "reset_after_flow_ends": False}
        if plan.asks[slot] != f"utter_ask_{slot}":
            step["utter"] = plan.asks[slot]
        kinds = form.mappings(slot)
        if "from_text" in kinds:
            plan.text_slots.add(slot)
        elif kinds == {"from_entity"} and slot in sources.regexes:
            step["rejections"] = [_rejection(form, slot, sources)]
        elif kinds == {"from_entity"}:
            form.report.add(
                "slot",
                slot,
                "note",
                form.project.section("slots")[slot].where,
                f"in {form.name} it is filled from its entity, or else from the whole answer",
            )
        steps.append(step)
    return steps


def _rejection(form: _Form, slot: str, sources: FormSources) -> dict[str, str]:
    """Reject answers without the slot's regex entity, as a from_entity mapping would."""
    pattern = "|".join(f"(?:{p})" for p in sources.regexes[slot])
    quoted = pattern.replace('"', '\\"')
    utter = f"utter_invalid_{slot}"
    if utter not in sources.responses:
        words = slot.replace("_", " ")
        sources.responses[utter] = [{"text": f"Sorry, that doesn't look like a valid {words}."}]
        form.report.add(
            "response", utter, "note", None, f"generated: {form.name} rejects a {words} without it"
        )
    return {"if": f'not slots.{slot} matches "{quoted}"', "utter": utter}


@dataclass
class FormSources:
    """What converting a form reads besides the form itself.

    Attributes:
        rules: The converted rules, with form activations and submissions.
        stories: The stories, for forms that rules do not start or end.
        responses: The converted responses; generated ones are added here.
        regexes: Regex patterns by entity name, from the NLU data.
        taken: Flow ids in use; the form's is added.
    """

    rules: RuleResult
    stories: list[Block]
    responses: dict[str, list[dict[str, Any]]]
    regexes: Mapping[str, list[str]]
    taken: set[str]


def convert_form(
    project: RasaProject, entry: Entry, sources: FormSources, report: Report
) -> FlowPlan:
    """Convert one form into a flow (generated responses go into ``sources.responses``)."""
    form = _Form(project, entry, report)
    slots = form.required()
    activations = sources.rules.activations.get(form.name) or story_activations(
        sources.stories, {form.name}
    ).get(form.name, [])
    intents, pre = _triggers(form, activations)
    submit = sources.rules.submissions.get(form.name)
    if submit is None:
        submit = story_submission(sources.stories, form.name) or []
    asks = {slot: form.ask(slot, sources.responses) for slot in slots}
    plan = FormPlan(form.name, slots, asks, pre, submit)
    steps = [*action_steps(pre), *_collects(form, plan, sources), *action_steps(submit)]
    validator = f"validate_{form.name}"
    if validator in project.section("actions"):
        form.human(
            f"{validator} ran after every answer in Rasa; the flow does not call it "
            "(it stays a remote action): move its checks into 'rejections' or an action step"
        )
    flow_id = unique_id(form.name, sources.taken)
    description = (
        f"Imported from the Rasa form '{form.name}' ({entry.where}): asks for {', '.join(slots)}."
    )
    spec = flow_spec(form.name.replace("_", " "), description, intents, steps)
    report.add("form", form.name, "converted", entry.where, f"flow {flow_id}")
    return FlowPlan(flow_id, spec, intents, form=plan)
