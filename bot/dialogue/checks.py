"""Cross-checks of the domain against the flows and the NLU data.

Errors (with ``file:line``) are what would surely misbehave: a response that
a flow utters naming a slot that does not exist (the customer would read
``{name}``), an ``nlu_trigger`` on an intent that neither the domain nor the
NLU data knows, a categorical slot set to a value outside its ``values``, a
response condition on an unknown slot. Warnings are what Rasa itself only
warns about, or what may be right: an NLU intent missing from the domain's
``intents``, a placeholder in a response that no flow utters (a custom
action may fill it with its own variables).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from bot.dialogue.domain import Domain, ResponseVariation
from bot.dialogue.flows import Flow
from bot.errors import FlowError
from bot.yamlio import line_of

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")


def used_responses(flows: Iterable[Flow]) -> set[str]:
    """Return the responses that flow steps utter themselves."""
    names: set[str] = set()
    for flow in flows:
        for step in flow.steps.values():
            if step.kind == "collect":
                names.add(step.utter or f"utter_ask_{step.value}")
                names.update(r.utter for r in step.rejections)
            elif step.kind == "action" and step.value.startswith("utter_"):
                names.add(step.value)
    return names


def _slot_names(variation: ResponseVariation) -> Iterator[str]:
    """Yield the slots a variation's text and buttons name (``{x}`` or ``{slots.x}``)."""
    texts = [variation.text, *(v for b in variation.buttons for v in b.values())]
    for text in texts:
        for name in _PLACEHOLDER.findall(text):
            if not name.startswith("context."):
                yield name.removeprefix("slots.")


def check_responses(flows: Mapping[str, Flow], domain: Domain) -> list[str]:
    """Check the slots that responses name; return the warnings.

    Raises:
        FlowError: A response a flow utters, or a response condition, names
            an unknown slot, or a condition wants a categorical value the
            slot does not have.
    """
    uttered = used_responses(flows.values())
    warnings: list[str] = []
    for name, variations in domain.responses.items():
        for variation in variations:
            _check_condition(name, variation, domain)
            for slot in _slot_names(variation):
                if slot in domain.slots:
                    continue
                where = f"{variation.path}:{variation.line}"
                if name in uttered:
                    raise FlowError(
                        variation.path,
                        variation.line,
                        f"response '{name}' names unknown slot '{slot}' in {{{slot}}}",
                    )
                warnings.append(
                    f"{where}: response '{name}' names '{{{slot}}}', which is no slot: "
                    "only a custom action that utters it with that variable can fill it"
                )
    return warnings


def _check_condition(name: str, variation: ResponseVariation, domain: Domain) -> None:
    for slot_name, value in variation.condition:
        slot = domain.slots.get(slot_name)
        if slot is None:
            reason = f"response '{name}' has a condition on unknown slot '{slot_name}'"
        elif not slot.allows(value):
            reason = (
                f"response '{name}' has a condition on slot '{slot_name}' with value "
                f"{value!r}, which is not one of its values"
            )
        else:
            continue
        raise FlowError(variation.path, variation.line, reason)


def check_triggers(flows: Mapping[str, Flow], domain: Domain, nlu_intents: set[str]) -> list[str]:
    """Check each ``nlu_trigger`` intent against the domain and the NLU data.

    Returns:
        Warnings for the triggers of a bot whose domain declares no intents
        at all (it does not use an intent list; buttons may send any ``/intent``).

    Raises:
        FlowError: The domain declares intents, and neither it nor the NLU
            data knows the trigger's (a typo, or an intent left out); with the
            line of the trigger.
    """
    known = set(domain.intents) | nlu_intents
    warnings: list[str] = []
    for flow in flows.values():
        for (intent, _), line in zip(flow.triggers, flow.trigger_lines, strict=False):
            if intent in known:
                continue
            reason = f"flow '{flow.id}': 'nlu_trigger' on unknown intent '{intent}'"
            if domain.intents:
                raise FlowError(
                    flow.path, line or flow.line, f"{reason} (add it to the domain's 'intents')"
                )
            warnings.append(f"{flow.path}:{line or flow.line}: {reason} (the domain has none)")
    return warnings


def check_set_slots(flows: Mapping[str, Flow], domain: Domain) -> None:
    """Refuse a ``set_slots`` that gives a categorical slot a value it does not have.

    Raises:
        FlowError: With the line of the step.
    """
    for flow in flows.values():
        for step in flow.steps.values():
            if step.kind != "set_slots":
                continue
            for name, value in step.value.items():
                slot = domain.slots.get(name)
                if slot is not None and not slot.allows(value):
                    raise FlowError(
                        flow.path,
                        step.line or flow.line,
                        f"flow '{flow.id}', step '{step.id}': {value!r} is not one of the "
                        f"values of slot '{name}' ({', '.join(slot.values)})",
                    )


def nlu_intents(data: Mapping[str, Any]) -> list[tuple[str, int | None]]:
    """Return the intents the ``nlu:`` list of a loaded file declares, with their lines."""
    found: list[tuple[str, int | None]] = []
    items = data.get("nlu")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and isinstance(item.get("intent"), str):
            found.append((item["intent"].strip(), line_of(item, "intent")))
    return found


def check_nlu_intents(intents: Iterable[tuple[str, str, int | None]], domain: Domain) -> list[str]:
    """Warn about NLU intents missing from the domain, as Rasa does.

    Args:
        intents: ``(file, intent, line)`` of each intent of the NLU data.
        domain: The merged domain.
    """
    return [
        f"{path}:{line}: intent '{name}' of the NLU data is not in the domain's 'intents'"
        for path, name, line in intents
        if name not in domain.intents
    ]
