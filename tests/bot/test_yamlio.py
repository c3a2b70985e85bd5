"""Hostile YAML in the configuration and the bot's files: a clear error naming file and line.

An alias bomb ("billion laughs") used to hang while memory grew, and bytes
that are not UTF-8 gave a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bot import yamlio
from bot.config import load_config
from bot.dialogue.project import load_project
from bot.errors import ConfigError, SourceError
from tests.processes import helpline

if TYPE_CHECKING:
    from pathlib import Path


def bomb(levels: int) -> str:
    """A document whose aliases expand ten times per level: 10**levels strings in all."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_with_the_line_of_an_alias() -> None:
    with pytest.raises(SourceError) as info:
        yamlio.loads(bomb(6), "bomb.yml")
    assert str(info.value).startswith("bomb.yml:6: invalid YAML: aliases expand the document")


def test_an_alias_bomb_in_the_config_is_refused_before_it_is_walked(tmp_path: Path) -> None:
    """The configuration's walk (``${ENV}`` substitution) would build 10**7 strings."""
    path = tmp_path / "helpline.yml"
    nested = "".join(f"  {line}" for line in bomb(7).splitlines(True))
    path.write_text(f"server:\n  port: 8080\nbomb:\n{nested}")
    with pytest.raises(ConfigError, match=rf"^{path}:\d+: invalid YAML: aliases expand"):
        load_config(path)


def test_a_few_aliases_and_merge_keys_still_load() -> None:
    data = yamlio.loads(
        "base: &base {type: text, initial_value: x}\n"
        "a: *base\n"
        "b:\n  <<: *base\n  values: [x]\n"
        "list: &l [1, 2, 3]\n"
        "more: [*l, *l]\n"
    )
    assert data["a"] == {"type": "text", "initial_value": "x"}
    assert data["b"] == {"type": "text", "initial_value": "x", "values": ["x"]}
    assert data["more"] == [[1, 2, 3], [1, 2, 3]]


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(SourceError, match=r"^x.yml:2: invalid YAML: a recursive alias"):
        yamlio.loads("ok: 1\nloop: &a [1, *a]\n", "x.yml")


def test_deep_nesting_is_refused_without_a_traceback() -> None:
    with pytest.raises(SourceError, match=r"^deep.yml: invalid YAML: nested too deeply"):
        yamlio.loads("[" * 50_000 + "]" * 50_000, "deep.yml")


def test_a_control_character_names_its_line() -> None:
    with pytest.raises(SourceError, match=r"^c.yml:2: invalid YAML: character U\+0001"):
        yamlio.loads("a: 1\nb: x\x01\n", "c.yml")


def test_invalid_utf8_in_the_config_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "helpline.yml"
    path.write_bytes(b"server:\n  port: 8080\nbot:\n  path: caf\xe9\n")
    with pytest.raises(ConfigError, match=rf"^{path}:4: not UTF-8 text \(byte 0xe9"):
        load_config(path)


@pytest.mark.parametrize("name", ["flows.yml", "domain.yml", "nlu.yml"])
def test_invalid_utf8_in_a_bot_file_names_file_and_line(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"version: '3.1'\n\n# caf\xc3\x28\n")
    with pytest.raises(SourceError, match=rf"^{tmp_path / name}:3: not UTF-8 text"):
        load_project(tmp_path)


def test_the_cli_reports_an_alias_bomb_in_the_config_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "helpline.yml"
    path.write_text(bomb(7))
    done = helpline("--config", str(path), "run")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {path}:")
    assert "aliases expand the document" in done.stderr
    assert "Traceback" not in done.stderr
