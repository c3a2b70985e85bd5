"""Converting the Rasa domain: intents, entities, slots, responses and actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.dialogue.domain import SLOT_TYPES

if TYPE_CHECKING:
    from bot.rasa_import.reader import Entry, RasaProject
    from bot.rasa_import.report import Report, Status

_RESPONSE_KEYS = {"text", "buttons", "condition", "metadata"}
_RICH_KEYS = ("image", "custom", "attachment", "elements", "quick_replies")
#: Slot mappings the flow engine supports as they are.
_ANSWER_MAPPING = {("affirm", True), ("deny", False)}


def convert_intents(project: RasaProject, report: Report) -> list[str]:
    """Return the intent names; entity filters and retrieval intents are reported."""
    names = []
    for entry in project.section("intents").values():
        if "/" in entry.name:
            report.add(
                "intent",
                entry.name,
                "unsupported",
                entry.where,
                "retrieval intents are not supported: split it into plain intents",
            )
            continue
        names.append(entry.name)
        report.add("intent", entry.name, "converted", entry.where)
        if isinstance(entry.spec, dict) and set(entry.spec) & {"use_entities", "ignore_entities"}:
            report.add(
                "intent",
                entry.name,
                "unsupported",
                entry.where,
                "use_entities/ignore_entities are dropped: every entity is used",
            )
    return names


def convert_entities(project: RasaProject, report: Report) -> list[str]:
    """Return the entity names; roles and groups are reported as dropped."""
    names = []
    for entry in project.section("entities").values():
        names.append(entry.name)
        report.add("entity", entry.name, "converted", entry.where)
        if isinstance(entry.spec, dict) and set(entry.spec) & {"roles", "groups"}:
            report.add(
                "entity",
                entry.name,
                "unsupported",
                entry.where,
                "entity roles and groups are dropped: the entity is used without them",
            )
    return names


def convert_slots(project: RasaProject, report: Report) -> dict[str, dict[str, Any]]:
    """Return the Helpline slots; ``influence_conversation`` and mappings are dropped."""
    slots: dict[str, dict[str, Any]] = {}
    for entry in project.section("slots").values():
        if entry.name == "requested_slot":
            report.add("slot", entry.name, "covered", entry.where, "flows track the asked slot")
            continue
        spec = entry.spec if isinstance(entry.spec, dict) else {}
        slot_type = str(spec.get("type", "text"))
        if slot_type not in SLOT_TYPES:
            report.add(
                "slot",
                entry.name,
                "needs_human",
                entry.where,
                f"custom slot type '{slot_type}' became 'any'",
            )
            slot_type = "any"
        out: dict[str, Any] = {"type": slot_type}
        if spec.get("initial_value") is not None:
            out["initial_value"] = spec["initial_value"]
        if slot_type == "categorical":
            out["values"] = [str(v) for v in spec.get("values") or []]
        if "min_value" in spec or "max_value" in spec:
            report.add(
                "slot", entry.name, "unsupported", entry.where, "min_value/max_value are dropped"
            )
        slots[entry.name] = out
        report.add("slot", entry.name, "converted", entry.where)
        _check_mappings(entry, slot_type, report)
    return slots


def _check_mappings(entry: Entry, slot_type: str, report: Report) -> None:
    """Report the slot mappings the flow engine cannot reproduce."""
    spec = entry.spec if isinstance(entry.spec, dict) else {}
    mappings = [m for m in spec.get("mappings") or [] if isinstance(m, dict)]
    intents = {
        (m.get("intent"), m.get("value")) for m in mappings if m.get("type") == "from_intent"
    }
    if intents and not (slot_type == "bool" and intents <= _ANSWER_MAPPING):
        report.add(
            "slot",
            entry.name,
            "needs_human",
            entry.where,
            "from_intent mappings are only supported for bool slots filled by affirm/deny",
        )
    for mapping in mappings:
        for status, reason in _mapping_problems(entry.name, mapping):
            report.add("slot", entry.name, status, entry.where, reason)


def _mapping_problems(slot: str, mapping: dict[str, Any]) -> list[tuple[Status, str]]:
    """Return what one slot mapping loses in Helpline, as ``(status, reason)``."""
    kind = mapping.get("type")
    problems: list[tuple[Status, str]] = []
    if kind == "from_entity" and mapping.get("entity") != slot:
        problems.append(
            (
                "needs_human",
                f"fills from entity '{mapping.get('entity')}': Helpline fills a slot from "
                "the entity of the same name, so rename one of them",
            )
        )
    if kind == "from_entity" and ("role" in mapping or "group" in mapping):
        problems.append(("unsupported", "entity role/group is dropped"))
    if kind in ("from_entity", "from_text") and ("intent" in mapping or "not_intent" in mapping):
        problems.append(
            ("unsupported", f"the intent/not_intent condition of its {kind} mapping is dropped")
        )
    if kind == "from_trigger_intent":
        problems.append(("needs_human", "from_trigger_intent: use set_slots"))
    return problems


def _variation(name: str, item: dict[str, Any], entry: Entry, report: Report) -> dict[str, Any]:
    rich = [k for k in _RICH_KEYS if k in item]
    out: dict[str, Any] = {"text": str(item.get("text") or "")}
    if rich:
        report.add(
            "response",
            name,
            "unsupported",
            entry.where,
            f"{', '.join(rich)} dropped: Helpline responses have text and buttons",
        )
        if not out["text"] and item.get("image"):
            out["text"] = str(item["image"])
    buttons = [
        {"title": str(b["title"]), "payload": str(b.get("payload", b["title"]))}
        for b in item.get("buttons") or []
        if isinstance(b, dict) and "title" in b
    ]
    if buttons:
        out["buttons"] = buttons
    condition = [c for c in item.get("condition") or [] if isinstance(c, dict)]
    if condition:
        out["condition"] = [
            {"type": "slot", "name": c.get("name"), "value": c.get("value")} for c in condition
        ]
        if any(c.get("type", "slot") != "slot" for c in condition):
            report.add(
                "response",
                name,
                "needs_human",
                entry.where,
                "a conditional variation tests something other than a slot",
            )
    return out


def convert_responses(project: RasaProject, report: Report) -> dict[str, list[dict[str, Any]]]:
    """Return the responses; channel-specific and rich variations are reported."""
    responses: dict[str, list[dict[str, Any]]] = {}
    for entry in project.section("responses").values():
        variations = []
        for item in entry.spec if isinstance(entry.spec, list) else []:
            if not isinstance(item, dict):
                continue
            if item.get("channel"):
                report.add(
                    "response",
                    entry.name,
                    "unsupported",
                    entry.where,
                    f"the variation for channel '{item['channel']}' is dropped",
                )
                continue
            variations.append(_variation(entry.name, item, entry, report))
        if not variations:
            report.add(
                "response", entry.name, "needs_human", entry.where, "no variation could be kept"
            )
            variations = [{"text": entry.name}]
        responses[entry.name] = variations
        report.add(
            "response", entry.name, "converted", entry.where, f"{len(variations)} variation(s)"
        )
        conditional = sum(1 for v in variations if "condition" in v)
        if 0 < conditional < len(variations):
            report.add(
                "response",
                entry.name,
                "note",
                entry.where,
                "when a conditional variation matches, Rasa used only those; Helpline picks "
                "among every matching variation, the unconditional ones too",
            )
    return responses


def convert_actions(project: RasaProject, report: Report) -> list[str]:
    """Return the custom action names; they keep running on the action server."""
    names = []
    for entry in project.section("actions").values():
        if entry.name.startswith("utter_"):
            continue
        names.append(entry.name)
        report.add("action", entry.name, "converted", entry.where, "runs on the action server")
    return names
