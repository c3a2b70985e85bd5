"""What bot validation used to accept silently, or report without file:line (issue 14).

Each case is an error naming ``file:line``, or a warning where Rasa itself
only warns; never silence and never a traceback.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from bot.actions.registry import ActionRegistry
from bot.dialogue.project import load_project
from bot.errors import ActionError, FlowError, SourceError
from bot.nlu.data import load_nlu, require_examples
from bot.nlu.embedded import EmbeddedNLU

if TYPE_CHECKING:
    from pathlib import Path

DOMAIN = """\
version: "3.1"
intents: [greet, buy]
slots:
  size:
    type: categorical
    values: [small, large]
  name:
    type: text
responses:
  utter_ask_size:
    - text: "Which size?"
  utter_hello:
    - text: "Hello {name}!"
  utter_action_only:
    - text: "Your code is {code}."
"""

FLOWS = """\
flows:
  buy:
    description: Buy something.
    nlu_trigger:
      - intent: buy
    steps:
      - collect: size
      - action: utter_hello
"""


def make(folder: Path, domain: str = DOMAIN, flows: str = FLOWS, **files: str) -> Path:
    (folder / "domain.yml").write_text(textwrap.dedent(domain))
    (folder / "flows.yml").write_text(textwrap.dedent(flows))
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(textwrap.dedent(text))
    return folder


def error_of(folder: Path) -> str:
    with pytest.raises(SourceError) as info:
        load_project(folder)
    return str(info.value)


def test_a_placeholder_only_an_action_can_fill_is_a_warning(tmp_path: Path) -> None:
    project = load_project(make(tmp_path))
    assert project.warnings == [
        f"{tmp_path / 'domain.yml'}:15: response 'utter_action_only' names '{{code}}', which is "
        "no slot: only a custom action that utters it with that variable can fill it"
    ]


def test_a_response_a_flow_utters_with_an_unknown_slot_is_an_error(tmp_path: Path) -> None:
    make(tmp_path, DOMAIN.replace("Hello {name}!", "Hello {nmae}!"))
    assert error_of(tmp_path) == (
        f"{tmp_path / 'domain.yml'}:13: response 'utter_hello' names unknown slot 'nmae' in {{nmae}}"
    )


def test_a_trigger_on_an_unknown_intent_is_an_error(tmp_path: Path) -> None:
    make(tmp_path, flows=FLOWS.replace("intent: buy", "intent: by"))
    assert error_of(tmp_path) == (
        f"{tmp_path / 'flows.yml'}:5: flow 'buy': 'nlu_trigger' on unknown intent 'by' "
        "(add it to the domain's 'intents')"
    )


def test_a_trigger_on_an_intent_of_the_nlu_data_is_a_warning_for_the_domain(
    tmp_path: Path,
) -> None:
    nlu = "nlu:\n  - intent: purchase\n    examples: |\n      - buy\n      - I want it\n"
    make(tmp_path, flows=FLOWS.replace("intent: buy", "intent: purchase"), nlu__yml=nlu)
    warnings = load_project(tmp_path).warnings
    assert (
        f"{tmp_path / 'nlu.yml'}:2: intent 'purchase' of the NLU data is not in the domain's "
        "'intents'"
    ) in warnings


@pytest.mark.parametrize(
    ("domain", "flows", "expected"),
    [
        (
            DOMAIN,
            FLOWS + "      - set_slots:\n          - size: medium\n",
            "flows.yml:9: flow 'buy', step '3_set_slots_[{'size': 'medium'}]': 'medium' is not "
            "one of the values of slot 'size' (small, large)",
        ),
        (
            DOMAIN.replace(
                "values: [small, large]", "values: [small, large]\n    initial_value: xl"
            ),
            FLOWS,
            "domain.yml:7: initial_value 'xl' of slot 'size' is not one of its values",
        ),
        (
            DOMAIN
            + "  utter_sized:\n    - text: Big.\n      condition:\n"
            + "        - type: slot\n          name: size\n          value: huge\n",
            FLOWS,
            "domain.yml:17: response 'utter_sized' has a condition on slot 'size' with value "
            "'huge', which is not one of its values",
        ),
    ],
)
def test_a_categorical_value_outside_the_slots_values_is_an_error(
    tmp_path: Path, domain: str, flows: str, expected: str
) -> None:
    make(tmp_path, domain, flows)
    message = error_of(tmp_path)
    assert message.endswith(expected)
    assert message.startswith(str(tmp_path))


def test_an_empty_flows_file_is_an_error(tmp_path: Path) -> None:
    make(tmp_path, flows="")
    assert error_of(tmp_path) == (
        f"{tmp_path / 'flows.yml'}:1: the file is empty (remove it, or give it content)"
    )


def test_a_bot_without_flows_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "domain.yml").write_text(DOMAIN)
    assert f"{tmp_path}: the bot has no flows (only the built-in patterns)" in (
        load_project(tmp_path).warnings
    )


def test_a_binary_kb_article_is_an_error_with_its_line(tmp_path: Path) -> None:
    make(tmp_path)
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "ok.md").write_text("# Fine\n\nText.\n")
    (tmp_path / "kb" / "logo.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert error_of(tmp_path) == (
        f"{tmp_path / 'kb' / 'logo.md'}:1: not UTF-8 text (byte 0x89 cannot be decoded)"
    )
    (tmp_path / "kb" / "logo.md").write_bytes(b"# Title\n\nabc\x00\x01\x02")
    assert error_of(tmp_path) == (
        f"{tmp_path / 'kb' / 'logo.md'}:3: a binary file (it holds NUL bytes), not an article"
    )


def test_a_one_example_intent_names_its_file_and_line(tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    nlu.write_text(
        "nlu:\n  - intent: greet\n    examples: |\n      - hi\n      - hello\n"
        "  - intent: buy\n    examples: |\n      - buy it\n"
    )
    expected = f"{nlu}:8: intent 'buy' has 1 example; the embedded NLU needs at least 2 per intent"
    with pytest.raises(FlowError) as info:
        require_examples(load_nlu([nlu]))
    assert str(info.value) == expected
    # Training refuses it the same way, before it even looks for the encoder.
    with pytest.raises(FlowError) as info:
        EmbeddedNLU.train([nlu], tmp_path / "no-encoder")
    assert str(info.value) == expected


@pytest.mark.parametrize(
    ("source", "where", "what"),
    [
        ("import asyncio\n\n\ndef broken(:\n    pass\n", ":4: cannot load actions: ", "syntax"),
        ("X = 1\n\n\nY = {}['missing']\n", ":4: cannot load actions: KeyError", "KeyError"),
        ("def f():\n    return 1 / 0\n\n\nf()\n", ":2: cannot load actions: ", "division"),
    ],
)
def test_errors_in_actions_py_name_its_file_and_line(
    tmp_path: Path, source: str, where: str, what: str
) -> None:
    path = tmp_path / "actions.py"
    path.write_text(source)
    with pytest.raises(ActionError) as info:
        ActionRegistry().load_module(path)
    assert str(info.value).startswith(f"{path}{where}")
    assert what in str(info.value)
