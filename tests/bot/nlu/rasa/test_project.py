"""The Rasa project written from a bot's NLU data (no Rasa needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.errors import FlowError, NLUError
from bot.nlu.data import load_nlu
from bot.nlu.rasa.project import pipeline_config, write_project

ROOT = Path(__file__).resolve().parents[4]
BOT_NLU = ROOT / "flows" / "nlu.yml"

NLU = """\
version: "3.1"
nlu:
- intent: check_order
  examples: |
    - where is [HL-12345](order_id)?
    - status of my [parcel]{"entity": "item", "value": "package"} please
    - track order
- intent: greet
  examples: |
    - hi
    - hello
- regex: order_id
  examples: |
    - HL-\\d{5}
- lookup: city
  examples: |
    - Lisbon
    - Porto
- synonym: package
  examples: |
    - box
"""


def test_round_trip_keeps_every_example_entity_and_pattern(tmp_path: Path) -> None:
    source = tmp_path / "nlu.yml"
    source.write_text(NLU)
    write_project([source], tmp_path / "rasa")
    written = load_nlu([tmp_path / "rasa" / "data" / "nlu.yml"])
    original = load_nlu([source])
    assert [(e.text, e.intent, e.entities) for e in written.examples] == [
        (e.text, e.intent, e.entities) for e in original.examples
    ]
    assert written.regexes == original.regexes
    assert written.lookups == original.lookups
    assert written.synonyms == original.synonyms


def test_the_default_bot_round_trips(tmp_path: Path) -> None:
    write_project([BOT_NLU], tmp_path)
    written = load_nlu([tmp_path / "data" / "nlu.yml"])
    original = load_nlu([BOT_NLU])
    assert len(written.examples) == len(original.examples)
    assert written.intents == original.intents
    assert written.regexes == original.regexes


def test_config_documents_the_pipeline(tmp_path: Path) -> None:
    source = tmp_path / "nlu.yml"
    source.write_text(NLU)
    write_project([source], tmp_path / "rasa", epochs=7)
    config = yaml.safe_load((tmp_path / "rasa" / "config.yml").read_text())
    names = [component["name"] for component in config["pipeline"]]
    assert names[0] == "WhitespaceTokenizer"
    assert "DIETClassifier" in names
    assert "RegexEntityExtractor" in names
    assert "EntitySynonymMapper" in names
    diet = next(c for c in config["pipeline"] if c["name"] == "DIETClassifier")
    assert diet["epochs"] == 7
    assert config["language"] == "en"
    assert "# " in pipeline_config()  # every component is explained


def test_cache_key_follows_the_content(tmp_path: Path) -> None:
    source = tmp_path / "nlu.yml"
    source.write_text(NLU)
    first = write_project([source], tmp_path / "a")
    assert write_project([source], tmp_path / "b") == first
    assert write_project([source], tmp_path / "c", epochs=5) != first
    source.write_text(NLU.replace("- hello\n", "- hello\n    - hey\n"))
    assert write_project([source], tmp_path / "d") != first


def test_malformed_data_names_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "nlu.yml"
    source.write_text(NLU.replace("- regex: order_id\n", "- regex: order_id\n  intent: x\n"))
    with pytest.raises(FlowError, match=r"nlu\.yml:12"):
        write_project([source], tmp_path / "rasa")
    assert not (tmp_path / "rasa").exists()


def test_one_intent_is_not_enough_for_rasa(tmp_path: Path) -> None:
    source = tmp_path / "nlu.yml"
    source.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n')
    with pytest.raises(NLUError, match="two intents"):
        write_project([source], tmp_path / "rasa")
