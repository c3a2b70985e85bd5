"""Reading Rasa projects: split domains, data folders, and broken input as file:line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.errors import SourceError
from bot.rasa_import.convert import convert
from bot.rasa_import.reader import read_project

from .conftest import DOMAIN, RASA_PROJECT, MiniProject


def test_a_domain_folder_is_merged() -> None:
    project = read_project(RASA_PROJECT)
    assert "utter_greet" in project.section("responses")  # domain/responses.yml
    assert "return_form" in project.section("forms")  # domain/core.yml
    assert project.section("slots")["order_id"].where.path.endswith("domain/core.yml")
    assert [Path(d.path).name for d in project.data] == ["nlu.yml", "rules.yml", "stories.yml"]


def test_a_missing_domain_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(SourceError, match=r"no domain\.yml or domain/ folder"):
        read_project(tmp_path)


def test_a_missing_project_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        read_project(tmp_path / "nowhere")


def test_malformed_yaml_names_file_and_line(mini_project: MiniProject) -> None:
    root = mini_project(
        rules="rules:\n- rule: broken\n  steps:\n  - intent: greet\n    action: [\n"
    )
    with pytest.raises(SourceError) as caught:
        convert(root)
    assert caught.value.path.endswith("data/rules.yml")
    assert caught.value.line == 6
    assert "invalid YAML" in caught.value.reason


def test_a_rule_with_an_unknown_response_names_file_and_line(mini_project: MiniProject) -> None:
    rules = """
    rules:
    - rule: greet back
      steps:
      - intent: greet
      - action: utter_greet
    - rule: typo
      steps:
      - intent: goodbye
      - action: utter_goodby
    """
    with pytest.raises(SourceError) as caught:
        convert(mini_project(rules=rules))
    assert str(caught.value).endswith(
        "data/rules.yml:10: rule 'typo': unknown response 'utter_goodby'"
    )


def test_a_story_with_an_unknown_action_or_intent_is_an_error(mini_project: MiniProject) -> None:
    stories = """
    stories:
    - story: s
      steps:
      - intent: greet
      - action: action_nobody_declared
    """
    with pytest.raises(SourceError, match=r"stories.yml:6: story 's': unknown action"):
        convert(mini_project(stories=stories))
    stories = "stories:\n- story: s\n  steps:\n  - intent: wave\n"
    with pytest.raises(SourceError, match=r"stories.yml:4: story 's': unknown intent 'wave'"):
        convert(mini_project(stories=stories))


def test_a_form_needing_an_unknown_slot_is_an_error(mini_project: MiniProject) -> None:
    domain = DOMAIN.replace("required_slots: [order_id]", "required_slots: [order_number]")
    with pytest.raises(
        SourceError, match=r"domain\.yml:33: form 'order_form' requires the unknown"
    ):
        convert(mini_project(domain=domain))


def test_a_domain_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    shutil.copytree(RASA_PROJECT, tmp_path / "p")
    (tmp_path / "p" / "domain" / "core.yml").write_text("- just\n- a list\n")
    with pytest.raises(SourceError, match=r"core.yml:1: the file must hold a mapping"):
        read_project(tmp_path / "p")
