"""Fixtures for the Rasa importer: the fixture project, its import, a mini-project maker,
and a real rasa-sdk action server running the fixture project's actions."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.rasa_import.convert import Conversion, convert
from bot.rasa_import.writer import write_project
from tests.processes import clean_env, free_port, serve

ROOT = Path(__file__).resolve().parents[3]
RASA_PROJECT = ROOT / "tests" / "data" / "rasa_project"
SDK_PYTHON = ROOT / ".venv-rasa-sdk" / "bin" / "python"
SETUP_SCRIPT = ROOT / "scripts" / "setup-rasa-sdk-venv.sh"
STARTUP_LIMIT_S = 90.0

MiniProject = Callable[..., Path]

DOMAIN = """
version: "3.1"
intents: [greet, goodbye, affirm, deny, inform, ask_hours, order_status]
entities: [order_id]
slots:
  order_id:
    type: text
    mappings:
      - type: from_entity
        entity: order_id
  vip:
    type: bool
    mappings:
      - type: custom
responses:
  utter_greet:
    - text: "Hi!"
  utter_goodbye:
    - text: "Bye!"
  utter_hours:
    - text: "9 to 5."
  utter_vip_hours:
    - text: "Always open for you."
  utter_ask_order_id:
    - text: "Order number?"
  utter_happy:
    - text: "Great!"
  utter_sad:
    - text: "Oh no."
actions:
  - action_check_order
forms:
  order_form:
    required_slots: [order_id]
"""

NLU = """
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello
- intent: goodbye
  examples: |
    - bye
- intent: affirm
  examples: |
    - yes
- intent: deny
  examples: |
    - no
- intent: inform
  examples: |
    - it is [A-1](order_id)
- intent: ask_hours
  examples: |
    - when are you open?
- intent: order_status
  examples: |
    - where is my order?
"""


@pytest.fixture
def mini_project(tmp_path: Path) -> MiniProject:
    """Write a small Rasa project; sections default to a valid one."""

    def make(
        rules: str = "version: '3.1'\nrules: []\n",
        stories: str = "version: '3.1'\nstories: []\n",
        domain: str = DOMAIN,
        nlu: str = NLU,
    ) -> Path:
        root = tmp_path / "rasa"
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "domain.yml").write_text(textwrap.dedent(domain))
        (root / "data" / "nlu.yml").write_text(textwrap.dedent(nlu))
        (root / "data" / "rules.yml").write_text(textwrap.dedent(rules))
        (root / "data" / "stories.yml").write_text(textwrap.dedent(stories))
        return root

    return make


@pytest.fixture(scope="session")
def conversion() -> Conversion:
    """The fixture project, converted in memory."""
    return convert(RASA_PROJECT)


@pytest.fixture(scope="session")
def imported(tmp_path_factory: pytest.TempPathFactory, conversion: Conversion) -> Path:
    """The fixture project, converted and written to a fresh folder."""
    out = tmp_path_factory.mktemp("imported") / "acme"
    write_project(conversion.files, out)
    return out


@pytest.fixture(scope="session")
def acme_action_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run ``python -m rasa_sdk`` on the fixture project's ``actions/``; yield its webhook URL.

    The same pattern as ``rasa_sdk_server`` in tests/bot/actions/conftest.py,
    on the Rasa project's own action package.
    """
    if sys.platform == "win32":
        pytest.skip("the rasa-sdk fixture uses POSIX process groups")
    subprocess.run(["bash", str(SETUP_SCRIPT)], check=True, timeout=900)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("acme-sdk") / "server.log"
    with serve(
        [str(SDK_PYTHON), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        cwd=RASA_PROJECT,
        env=clean_env(SANIC_HOST="127.0.0.1"),
        health_url=f"{base_url}/health",
        log_path=log_path,
        limit_s=STARTUP_LIMIT_S,
    ):
        yield f"{base_url}/webhook"


def findings(conversion: Conversion, kind: str, status: str) -> dict[str, str]:
    """Return ``{name: reason}`` of the report's findings of one kind and status."""
    return {
        f.name: f.reason
        for f in conversion.report.findings
        if f.kind == kind and f.status == status
    }


def flows_of(conversion: Conversion) -> dict[str, Any]:
    """Return the ``flows:`` mapping of a conversion."""
    return dict(yaml.safe_load(conversion.files["flows/flows.yml"])["flows"])
