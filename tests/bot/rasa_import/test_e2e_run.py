"""The imported bot loads, validates and passes its e2e tests on a real action server.

The e2e tests generated from the fixture's rules and linear stories, plus the
hand-written form tests in e2e_forms.yml, run through ``helpline test e2e``
against the Rasa project's own actions on a rasa-sdk server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bot.config import load_config
from bot.dialogue.project import load_project

ROOT = Path(__file__).resolve().parents[3]
FORMS = Path(__file__).with_name("e2e_forms.yml")


def test_the_imported_project_loads_and_validates(imported: Path) -> None:
    project = load_project(imported / "flows")
    ids = {f.id for f in project.user_flows()}
    assert {"greet", "return_form", "feedback_form", "track_package"} <= ids
    assert project.flows["return_form"].triggers == (("return_item", 0.0),)
    collect = project.flows["return_form"].collect_step("confirm_return")
    assert collect is not None
    assert collect.utter == "utter_ask_return_form_confirm_return"
    assert not collect.reset_after_flow_ends
    assert "action_check_order" in project.domain.actions
    assert project.domain.slots["customer_tier"].initial_value == "standard"


def test_the_generated_config_points_at_the_bot_and_the_action_server(imported: Path) -> None:
    config = load_config(imported / "helpline.yml")
    assert config.bot.path == imported / "flows"
    expected = os.environ.get("HELPLINE_ACTION_ENDPOINT") or "http://localhost:5055/webhook"
    assert config.actions.endpoint == expected


def test_the_imported_bot_passes_its_e2e_tests(
    imported: Path, acme_action_server: str, tmp_path: Path
) -> None:
    bot = tmp_path / "acme"
    shutil.copytree(imported, bot)
    shutil.copy(FORMS, bot / "flows" / "tests" / "e2e_forms.yml")
    # The encoder is exported once per machine: share the repository's model cache.
    (bot / "var").mkdir()
    (bot / "var" / "models").symlink_to(ROOT / "var" / "models")
    env = {**os.environ, "HELPLINE_ACTION_ENDPOINT": acme_action_server}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(bot / "helpline.yml"), "test", "e2e"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=280,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-1500:]
    assert lines[-1] == "22 passed, 0 failed"
    assert "PASSED story_return_an_item_asking_for_the_store_hours_in_between" in lines
    assert "PASSED feedback_through_the_rating_buttons" in lines
