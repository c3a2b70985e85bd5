"""Converting a whole Rasa project into the files of a Helpline project.

The result mirrors Helpline's own layout: ``helpline.yml`` next to a
``flows/`` bot folder with ``flows.yml``, ``domain.yml``, ``nlu.yml`` and
``tests/`` (e2e tests generated from rules and linear stories).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.rasa_import import domain as rasa_domain
from bot.rasa_import.e2e import E2EWriter, slug
from bot.rasa_import.emit import dump
from bot.rasa_import.forms import FormSources, convert_form
from bot.rasa_import.nlu import NLUResult, convert_nlu
from bot.rasa_import.notes import helpline_config, report_project
from bot.rasa_import.reader import read_project
from bot.rasa_import.report import Report
from bot.rasa_import.rules import convert_rules
from bot.rasa_import.steps import read_blocks
from bot.rasa_import.stories import StoryChecker

if TYPE_CHECKING:
    from bot.rasa_import.plan import FlowPlan

_LOGGER = logging.getLogger(__name__)

BOT_DIR = "flows"
#: A Rasa bot listens after a rule; Helpline would ask "anything else?".
_QUIET_COMPLETED = {
    "description": "Imported Rasa bots say nothing more when a flow ends, as Rasa did.",
    "steps": [{"noop": True}],
}


@dataclass
class Conversion:
    """The files of the converted project (relative path → text) and the report."""

    files: dict[str, str]
    report: Report


def _domain_doc(project: Any, report: Report, nlu_entities: list[str]) -> dict[str, Any]:
    return {
        "version": "3.1",
        "intents": rasa_domain.convert_intents(project, report),
        "entities": nlu_entities,
        "slots": rasa_domain.convert_slots(project, report),
        "responses": rasa_domain.convert_responses(project, report),
        "actions": rasa_domain.convert_actions(project, report),
    }


def _check_triggers(flows: list[FlowPlan], report: Report) -> None:
    """Report intents that trigger more than one unguarded flow: the first one wins."""
    owner: dict[str, str] = {}
    for flow in flows:
        for intent in flow.intents if not flow.guarded else []:
            if intent in owner:
                report.add(
                    "flow",
                    flow.flow_id,
                    "needs_human",
                    None,
                    f"'{intent}' also starts {owner[intent]}, which wins",
                )
            owner.setdefault(intent, flow.flow_id)


def _rule_cases(flows: list[FlowPlan], writer: E2EWriter, report: Report) -> list[dict[str, Any]]:
    cases = []
    for flow in flows:
        if flow.guarded or flow.form is not None or not flow.intents:
            continue
        text = writer.user_text(flow.intents[0], {})
        if text is None:
            continue
        name = f"rule_{slug(flow.flow_id)}"
        cases.append({"test_case": name, "steps": writer.turn(text, flow.actions, {})})
        report.add("e2e_test", name, "converted", None, f"from the flow {flow.flow_id}")
    return cases


def _flows(
    project: Any,
    domain: dict[str, Any],
    nlu: NLUResult,
    writer: E2EWriter,
    report: Report,
) -> tuple[list[FlowPlan], list[dict[str, Any]], list[dict[str, Any]]]:
    regexes = nlu.regexes
    rules = read_blocks(project, "rule")
    stories = read_blocks(project, "story")
    forms = project.section("forms")
    taken: set[str] = set()
    result = convert_rules(rules, set(forms), taken, report)
    sources = FormSources(result, stories, domain["responses"], regexes, taken)
    form_flows = [convert_form(project, entry, sources, report) for entry in forms.values()]
    flows = [*result.flows, *form_flows]
    checker = StoryChecker(flows, writer, taken, report)
    checker.learn(stories)
    names: set[str] = set()
    for story in stories:
        checker.check(story, names)
    flows += checker.new_flows
    _check_triggers(flows, report)
    return flows, _rule_cases(result.flows + checker.new_flows, writer, report), checker.cases


def _tests(header: str, cases: list[dict[str, Any]]) -> str:
    return dump({"test_cases": cases}, header)


def convert(root: str | Path) -> Conversion:
    """Convert the Rasa project in ``root``.

    Raises:
        SourceError: The project is broken (malformed YAML, a missing domain,
            a rule or story naming an unknown response, action or intent).
    """
    project = read_project(root)
    report = Report(source=str(root))
    action_url = report_project(project, report)
    entities = rasa_domain.convert_entities(project, report)
    domain = _domain_doc(project, report, entities)
    nlu = convert_nlu(project, entities, report)
    writer = E2EWriter(nlu.examples, domain["slots"])
    flows, rule_cases, story_cases = _flows(project, domain, nlu, writer, report)
    spec = {f.flow_id: f.spec for f in flows}
    spec["pattern_completed"] = _QUIET_COMPLETED
    report.add("flow", "pattern_completed", "note", None, "overridden to say nothing, as Rasa")
    origin = f"Generated by `helpline import rasa` from {root}."
    files = {
        "helpline.yml": dump(helpline_config(action_url), origin),
        f"{BOT_DIR}/flows.yml": dump({"flows": spec}, origin),
        f"{BOT_DIR}/domain.yml": dump(domain, origin),
        f"{BOT_DIR}/nlu.yml": dump(nlu.document(), origin),
    }
    if rule_cases:
        files[f"{BOT_DIR}/tests/e2e_rules.yml"] = _tests(
            origin + "\nOne case per rule.", rule_cases
        )
    if story_cases:
        note = "\nOne case per linear story; turns that run custom actions use assertions."
        files[f"{BOT_DIR}/tests/e2e_stories.yml"] = _tests(origin + note, story_cases)
    _LOGGER.info("Converted %s: %d flows, %d e2e tests.", root, len(flows), len(story_cases))
    return Conversion(files, report)
