"""The import report: counts per kind, what needs a human, what is left out."""

from __future__ import annotations

import json

from bot.rasa_import.convert import Conversion
from bot.rasa_import.report import Finding


def _find(conversion: Conversion, kind: str, name: str, status: str) -> Finding:
    found = [
        f for f in conversion.report.findings if (f.kind, f.name, f.status) == (kind, name, status)
    ]
    assert len(found) == 1, conversion.report.findings
    return found[0]


def test_counts_per_kind(conversion: Conversion) -> None:
    counts = conversion.report.counts()
    assert counts["intent"] == {"converted": 15}
    assert counts["form"]["converted"] == 2
    assert counts["rule"] == {"converted": 14, "covered": 2, "needs_human": 1}
    assert counts["story"] == {"converted": 2, "covered": 6, "needs_human": 4}
    assert counts["e2e_test"] == {"converted": 18}
    assert counts["synonym"] == {"converted": 2}
    assert counts["regex"] == {"converted": 1}
    assert counts["action"] == {"converted": 4}


def test_stories_that_branch_need_a_human_with_file_and_line(conversion: Conversion) -> None:
    checkpoint = _find(
        conversion, "story", "unhappy user after a return (checkpoint)", "needs_human"
    )
    assert checkpoint.where.endswith("data/stories.yml:139")
    assert "checkpoint" in checkpoint.reason
    alternatives = _find(
        conversion, "story", "greet or thank, then ask about shipping", "needs_human"
    )
    # Each 'or' alternative is tried; 'thank' contradicts the rule for thanks.
    assert alternatives.where.endswith("data/stories.yml:148")
    assert alternatives.reason == (
        "'thank' runs ['utter_greet'] here but ['utter_you_are_welcome'] in the flow thank "
        "(story at line 144)"
    )
    branching = _find(conversion, "story", "unhappy user feels better", "needs_human")
    assert branching.where.endswith("data/stories.yml:127")
    assert "'affirm' is followed by ['utter_happy']" in branching.reason
    assert "['utter_you_are_welcome'] at " in branching.reason


def test_covered_and_converted_stories(conversion: Conversion) -> None:
    covered = _find(conversion, "story", "return an item", "covered")
    assert covered.reason == "e2e test story_return_an_item"
    _find(conversion, "story", "track a package straight away", "converted")


def test_unsupported_features_are_listed(conversion: Conversion) -> None:
    report = conversion.report
    left_out = {(f.kind, f.name) for f in report.with_status("unsupported")}
    assert {
        ("config", "pipeline"),
        ("config", "policies"),
        ("domain", "session_config"),
        ("endpoint", "tracker_store"),
        ("entity", "city"),
        ("response", "utter_greet"),
        ("response", "utter_cheer_up"),
        ("form", "feedback_form"),
        ("nlu", "roles"),
    } <= left_out
    assert _find(conversion, "domain", "session_config", "unsupported").where.endswith(
        "domain/core.yml:125"
    )


def test_conditional_variations_get_a_note(conversion: Conversion) -> None:
    note = _find(conversion, "response", "utter_greet", "note")
    assert note.reason.startswith("when a conditional variation matches, Rasa used only those")


def test_rules_and_forms_that_need_a_human(conversion: Conversion) -> None:
    start = _find(conversion, "rule", "Welcome on the first message", "needs_human")
    assert start.where.endswith("data/rules.yml:106")
    validator = _find(conversion, "form", "return_form", "needs_human")
    assert "validate_return_form" in validator.reason


def test_interruption_and_continuation_rules_are_covered(conversion: Conversion) -> None:
    _find(conversion, "rule", "Store hours during a return", "covered")
    _find(conversion, "rule", "Ask whether cheering up helped", "covered")


def test_text_and_json_renderings(conversion: Conversion) -> None:
    text = conversion.report.render()
    assert "Needs a human (6):" in text
    assert "data/stories.yml:139: story 'unhappy user after a return (checkpoint)'" in text
    data = json.loads(conversion.report.to_json())
    assert data["counts"]["story"]["needs_human"] == 4
    assert {"kind", "name", "status", "where", "reason"} == set(data["findings"][0])
