"""``helpline import rasa``: exit codes, the report, and an output folder that errors never touch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import ConfigError, FlowError
from bot.rasa_import.writer import write_project
from tests.processes import helpline

from .conftest import RASA_PROJECT


def _broken(tmp_path: Path) -> Path:
    broken = tmp_path / "broken"
    shutil.copytree(RASA_PROJECT, broken)
    rules = broken / "data" / "rules.yml"
    rules.write_text(rules.read_text().replace("action: utter_iamabot", "action: utter_iambot"))
    return broken


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def test_the_verb_writes_the_bot_and_prints_the_report(tmp_path: Path) -> None:
    result = helpline("import", "rasa", str(RASA_PROJECT), "--out", "acme", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Imported the Rasa project {RASA_PROJECT} into acme.")
    assert "Needs a human (6):" in result.stdout
    assert (tmp_path / "acme" / "flows" / "flows.yml").is_file()
    assert (tmp_path / "acme" / "helpline.yml").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_default_output_folder_is_named_after_the_project(tmp_path: Path) -> None:
    result = helpline("import", "rasa", str(RASA_PROJECT), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["output"] == "rasa_project-helpline"
    assert (tmp_path / "rasa_project-helpline" / "flows" / "domain.yml").is_file()


def test_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["import", "rasa", str(RASA_PROJECT), "--out", str(tmp_path / "out"), "--json"])
    assert exited.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output"] == str(tmp_path / "out")
    assert report["counts"]["form"]["converted"] == 2
    stories = [f for f in report["findings"] if f["kind"] == "story"]
    assert [f["status"] for f in stories].count("needs_human") == 4


def test_bad_input_exits_2_with_file_and_line_and_writes_nothing(tmp_path: Path) -> None:
    broken = _broken(tmp_path)
    result = helpline("import", "rasa", str(broken), "--out", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{broken}/data/rules.yml:22: rule 'Say I am a bot when asked': unknown response" in (
        result.stderr
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]


def test_malformed_yaml_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = _broken(tmp_path)
    (broken / "domain" / "core.yml").write_text("intents:\n  - greet\n slots: {\n")
    with pytest.raises(SystemExit) as exited:
        main(["import", "rasa", str(broken), "--out", str(tmp_path / "out")])
    assert exited.value.code == 2
    assert f"error: {broken}/domain/core.yml:3: invalid YAML" in capsys.readouterr().err


def test_a_non_empty_output_folder_is_refused_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = helpline("import", "rasa", str(RASA_PROJECT), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2
    assert "exists and is not empty; use --force" in result.stderr
    assert _snapshot(out) == {"mine.txt": "keep me"}


def test_force_replaces_the_folder_but_an_error_leaves_it_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(SystemExit) as exited:
        main(["import", "rasa", str(_broken(tmp_path)), "--out", str(out), "--force"])
    assert exited.value.code == 2
    assert _snapshot(out) == {"old.txt": "old"}
    with pytest.raises(SystemExit) as exited:
        main(["import", "rasa", str(RASA_PROJECT), "--out", str(out), "--force"])
    assert exited.value.code == 0
    assert "old.txt" not in _snapshot(out)
    assert "flows/domain.yml" in _snapshot(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "out"]
    capsys.readouterr()


def test_a_project_that_does_not_load_is_not_written(tmp_path: Path) -> None:
    files = {"helpline.yml": "bot: {path: flows}\n", "flows/flows.yml": "flows: {f: {}}\n"}
    with pytest.raises(FlowError, match=r"flows\.yml"):
        write_project(files, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_an_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        write_project({}, tmp_path / "out", force=True)
