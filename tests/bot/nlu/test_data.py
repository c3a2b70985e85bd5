from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bot.dialogue.nlu import Entity
from bot.errors import FlowError, SourceError
from bot.nlu.data import load_nlu, parse_example

if TYPE_CHECKING:
    from pathlib import Path

NLU_YML = """\
version: "3.1"
nlu:
- intent: track_order
  examples: |
    - where is order [12345](order_id)
    - track my [parcel]{"entity": "item", "value": "package"}
    - has my [bike](product:bicycle) shipped
- intent: greet
  examples: |
    - hello
    - hi there
- regex: order_id
  examples: |
    - \\b\\d{5}\\b
- lookup: product
  examples: |
    - Coffee Maker
    - kettle
- synonym: coffee maker
  examples: |
    - coffee machine
    - espresso maker
"""


def _write(tmp_path: Path, text: str, name: str = "nlu.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_examples_are_stripped_of_annotations(tmp_path: Path) -> None:
    data = load_nlu([_write(tmp_path, NLU_YML)])
    texts = [e.text for e in data.examples]
    assert texts == [
        "where is order 12345",
        "track my parcel",
        "has my bike shipped",
        "hello",
        "hi there",
    ]
    assert data.intents == ["track_order", "greet"]
    assert data.examples[0].entities == (Entity("order_id", "12345", 15, 20, "annotation"),)
    assert data.examples[1].entities[0].value == "package"
    assert data.examples[2].entities[0] == Entity("product", "bicycle", 7, 11, "annotation")
    assert data.examples[0].line == 5


def test_regex_lookup_and_synonyms_are_collected(tmp_path: Path) -> None:
    data = load_nlu([_write(tmp_path, NLU_YML)])
    assert data.regexes == {"order_id": [r"\b\d{5}\b"]}
    assert data.lookups == {"product": ["Coffee Maker", "kettle"]}
    assert data.synonyms["coffee machine"] == "coffee maker"
    assert data.synonyms["espresso maker"] == "coffee maker"
    # Annotated values that differ from the text become synonyms, as in Rasa.
    assert data.synonyms["parcel"] == "package"
    assert data.synonyms["bike"] == "bicycle"


def test_files_are_merged(tmp_path: Path) -> None:
    extra = "nlu:\n- intent: bye\n  examples: |\n    - goodbye\n    - see you\n"
    data = load_nlu([_write(tmp_path, NLU_YML), _write(tmp_path, extra, "b.yml")])
    assert data.intents == ["track_order", "greet", "bye"]


def test_parse_example_rejects_bad_json() -> None:
    with pytest.raises(FlowError, match=r"f\.yml:7: invalid entity annotation JSON"):
        parse_example('a [b]{"entity": }', "f.yml", 7)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("nlu:\n- intent: a\n  examples: |\n    - fine\n    not a list item\n", 5, "must start"),
        ("nlu:\n- intent: a\n  examples: |\n    - [x]()\n", 4, "without a name"),
        ("nlu:\n- intent: a\n  examples: 3\n", 3, "block of"),
        ("nlu:\n- intent: a\n- intent: b\n  examples: |\n    - x\n", 2, "no 'examples'"),
        ("nlu:\n- examples: |\n    - x\n", 2, "exactly one of"),
        ("nlu:\n- regex: r\n  examples: |\n    - ok\n    - ([\n", 5, "invalid regex"),
        ("nlu: 3\n", 1, "must be a list"),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(FlowError, match=reason) as info:
        load_nlu([path])
    assert info.value.path == str(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_invalid_yaml_is_a_source_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "nlu:\n- intent: [a\n")
    with pytest.raises(SourceError, match=f"{path}:"):
        load_nlu([path])


def test_benchmark_splits_share_no_sentence(data_dir: Path) -> None:
    splits = {n: load_nlu([data_dir / f"{n}.yml"]) for n in ("train", "val", "test")}
    texts = {n: {e.text.lower() for e in d.examples} for n, d in splits.items()}
    assert not texts["train"] & texts["val"]
    assert not texts["train"] & texts["test"]
    assert not texts["val"] & texts["test"]
    assert len(splits["train"].intents) >= 30
    assert "out_of_scope" in splits["test"].intents
