"""Converting rules: intent → actions rules become flows with an ``nlu_trigger``.

Form activation and submission rules are collected for :mod:`bot.rasa_import.forms`;
rules that continue a form after an interruption are covered by Helpline's
digressions. A rule with ``wait_for_user_input: false`` is joined with the
rule that starts with its last action. Everything else is reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.rasa_import.plan import (
    KEPT_DEFAULT_ACTIONS,
    FlowPlan,
    action_steps,
    flow_spec,
    unique_id,
)
from bot.rasa_import.steps import DEFAULT_ACTIONS

if TYPE_CHECKING:
    from bot.rasa_import.reader import Where
    from bot.rasa_import.report import Report
    from bot.rasa_import.steps import Block, Step


#: Rasa's intent for messages below the FallbackClassifier's threshold.
FALLBACK_INTENT = "nlu_fallback"
CANNOT_HANDLE = "pattern_cannot_handle"


@dataclass(frozen=True)
class Activation:
    """An intent that starts a form, and what runs before the form asks."""

    intent: str
    pre: tuple[str, ...]
    where: Where


@dataclass
class RuleResult:
    """What the rules gave: flows, and the form triggers and submissions."""

    flows: list[FlowPlan] = field(default_factory=list)
    activations: dict[str, list[Activation]] = field(default_factory=dict)
    submissions: dict[str, list[str]] = field(default_factory=dict)


class _Rules:
    """Classifies and converts the rules of one project."""

    def __init__(self, forms: set[str], taken: set[str], report: Report) -> None:
        self.forms = forms
        self.taken = taken
        self.report = report
        self.result = RuleResult()
        self.continuations: dict[str, Block] = {}
        self.used: set[str] = set()

    def human(self, rule: Block, reason: str) -> None:
        self.report.add("rule", rule.name, "needs_human", rule.where, reason)

    def actions(self, rule: Block, steps: list[Step]) -> list[str] | None:
        """Return the action names of ``steps``; ``None`` (reported) if one is unusable."""
        names = []
        for step in steps:
            if step.kind == "slot_was_set":
                continue  # what an action set: the flow needs nothing for it
            if step.kind != "action":
                self.human(rule, f"{step.where}: a '{step.kind}' step where an action was expected")
                return None
            if step.value in DEFAULT_ACTIONS - KEPT_DEFAULT_ACTIONS:
                if step.value != "action_listen":
                    self.human(rule, f"{step.where}: Rasa's '{step.value}' has no Helpline twin")
                    return None
                continue
            names.append(str(step.value))
        return names

    def convert(self, rule: Block) -> None:
        steps = rule.steps
        loops = [s.value for s in rule.condition if s.kind == "active_loop" and s.value]
        if rule.conversation_start:
            self.human(rule, "conversation_start rules are not supported")
        elif any(s.kind == "checkpoint" for s in steps) or any(s.kind == "or" for s in steps[1:]):
            self.human(rule, "checkpoints, and 'or' after the user's message, are not supported")
        elif loops:
            self.in_form(rule, str(loops[0]))
        elif not steps:
            self.human(rule, "the rule has no steps")
        elif steps[0].kind == "action":
            self.continuations[str(steps[0].value)] = rule
        elif first_intents(steps[0]) is None:
            self.human(rule, f"a rule that starts with '{steps[0].kind}' is not supported")
        elif [s for s in steps[1:] if s.kind == "intent"]:
            self.human(rule, "a rule with more than one user turn: write it as a flow")
        else:
            self.from_intent(rule)

    def in_form(self, rule: Block, form: str) -> None:
        steps = rule.steps
        kinds = [(s.kind, s.value) for s in steps]
        if kinds[:2] == [("action", form), ("active_loop", None)]:
            actions = self.actions(rule, steps[2:])
            if actions is not None:
                self.result.submissions[form] = actions
                self.report.add("rule", rule.name, "converted", rule.where, f"ends the flow {form}")
        elif (
            steps
            and steps[0].kind == "intent"
            and kinds[-2:]
            == [
                ("action", form),
                ("active_loop", form),
            ]
        ):
            self.report.add(
                "rule",
                rule.name,
                "covered",
                rule.where,
                f"an interruption of {form}: the flow resumes by itself after a digression",
            )
        else:
            self.human(rule, f"a rule inside the form {form} that is not its submission")

    def from_intent(self, rule: Block) -> None:
        intents = first_intents(rule.steps[0]) or []
        rest = rule.steps[1:]
        form_at = next(
            (i for i, s in enumerate(rest) if s.kind == "action" and s.value in self.forms), None
        )
        if form_at is not None:
            pre = self.actions(rule, rest[:form_at])
            if pre is not None:
                form = str(rest[form_at].value)
                for intent in intents:
                    activation = Activation(intent, tuple(pre), rule.where)
                    self.result.activations.setdefault(form, []).append(activation)
                self.report.add(
                    "rule", rule.name, "converted", rule.where, f"starts the flow {form}"
                )
            return
        guard = self.guard(rule)
        actions = self.actions(rule, rest)
        if guard is None or actions is None:
            return
        if intents == [FALLBACK_INTENT]:
            self.fallback(rule, actions, guard)
            return
        if rule.steps[0].entities:
            self.report.add(
                "rule", rule.name, "unsupported", rule.where, "its entity condition is dropped"
            )
        self.add_flow(rule, intents, actions, guard)

    def guard(self, rule: Block) -> str | None:
        """Return the flow guard for the rule's slot conditions ('' for none)."""
        parts = []
        for step in rule.condition:
            if step.kind == "active_loop" and step.value is None:
                continue  # "no form is active": a flow trigger never fires inside a collect
            if step.kind != "slot_was_set":
                self.human(rule, f"{step.where}: a '{step.kind}' condition is not supported")
                return None
            for name, value in _slot_items(step.value):
                parts.append(_condition(name, value))
        return " and ".join(parts)

    def fallback(self, rule: Block, actions: list[str], guard: str) -> None:
        """Turn the low-NLU-confidence rule into Helpline's ``pattern_cannot_handle``."""
        if guard or CANNOT_HANDLE in self.taken:
            self.human(rule, f"only one unconditional {FALLBACK_INTENT} rule can be converted")
            return
        self.taken.add(CANNOT_HANDLE)
        description = f"Imported from the Rasa rule '{rule.name}' ({rule.where})."
        spec = flow_spec(rule.name, description, [], action_steps(actions))
        self.result.flows.append(FlowPlan(CANNOT_HANDLE, spec, [], actions))
        reason = f"flow {CANNOT_HANDLE}: Helpline runs it for messages the NLU is unsure of"
        self.report.add("rule", rule.name, "converted", rule.where, reason)

    def add_flow(self, rule: Block, intents: list[str], actions: list[str], guard: str) -> None:
        for flow in self.result.flows if not guard else []:
            shared = [i for i in intents if i in flow.intents and not flow.guarded]
            if shared:
                self.human(
                    rule, f"the flow {flow.flow_id} already answers the intent '{shared[0]}'"
                )
                return
        if not rule.wait_for_user_input:
            actions = self.chain(rule, actions)
        flow_id = unique_id(intents[0], self.taken)
        description = f"Imported from the Rasa rule '{rule.name}' ({rule.where})."
        spec = flow_spec(rule.name, description, intents, action_steps(actions))
        if guard:
            spec = {"if": guard, **spec}
        plan = FlowPlan(flow_id, spec, intents, actions, guarded=bool(guard))
        self.result.flows.append(plan)
        self.report.add("rule", rule.name, "converted", rule.where, f"flow {flow_id}")

    def chain(self, rule: Block, actions: list[str]) -> list[str]:
        """Append the rule that continues after the last action, when there is one."""
        follow = self.continuations.get(actions[-1]) if actions else None
        if follow is None:
            self.report.add(
                "rule",
                rule.name,
                "needs_human",
                rule.where,
                "wait_for_user_input: false, and no rule continues after its last action",
            )
            return actions
        self.used.add(follow.name)
        more = self.actions(follow, follow.steps[1:]) or []
        return [*actions, *more]

    def finish(self) -> None:
        for name, rule in self.continuations.items():
            if rule.name in self.used:
                self.report.add(
                    "rule", rule.name, "covered", rule.where, "joined to the rule before"
                )
            else:
                self.human(
                    rule, f"starts with the action '{name}' that no converted rule ends with"
                )


def first_intents(step: Step) -> list[str] | None:
    """Return the intents a turn starts with: one, or the alternatives of an ``or``."""
    if step.kind == "intent":
        return [str(step.value)]
    if step.kind == "or" and all(alt.kind == "intent" for alt in step.value):
        return [str(alt.value) for alt in step.value]
    return None


def _slot_items(value: Any) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for entry in value or []:
        if isinstance(entry, dict):
            items.extend((str(k), v) for k, v in entry.items())
        else:
            items.append((str(entry), True))
    return items


def _condition(name: str, value: Any) -> str:
    if value is True:
        return f"slots.{name}"
    if value is False:
        return f"not slots.{name}"
    if value is None:
        return f"slots.{name} is null"
    if isinstance(value, int | float):
        return f"slots.{name} = {value}"
    return f"slots.{name} = {json.dumps(str(value))}"


def convert_rules(
    blocks: list[Block], forms: set[str], taken: set[str], report: Report
) -> RuleResult:
    """Convert the rules; flows guarded by slot conditions come first.

    Args:
        blocks: The project's rules.
        forms: The form names of the domain.
        taken: Flow ids already used; the new ones are added.
        report: Where findings go.
    """
    rules = _Rules(forms, taken, report)
    # Continuations first, so a rule can be joined with one written after it.
    ordered = sorted(blocks, key=lambda b: not (b.steps and b.steps[0].kind == "action"))
    for rule in ordered:
        rules.convert(rule)
    rules.finish()
    rules.result.flows.sort(key=lambda f: not f.guarded)
    return rules.result
