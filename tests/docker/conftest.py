"""Shared helpers of the packaging tests: the repository's paths and the image's layout.

The image puts ``helpline.yml``, ``flows/``, ``var/models/`` and
``healthcheck.py`` side by side under ``/app``; :func:`image_layout` builds the
same folder from the repository (symlinks), so a config written for the image
resolves its relative paths natively exactly as it does inside the container.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"
BIN = Path(sys.executable).parent


def tool(name: str) -> Path:
    """Return a console script of our venv (installed from requirements.txt)."""
    path = BIN / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: it comes with requirements.txt (make setup installs it)")
    return path


def k8s_documents() -> list[tuple[Path, dict[str, object]]]:
    """Every Kubernetes object under docker/k8s (kustomization.yaml excluded)."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def k8s_object(kind: str, name: str) -> dict[str, object]:
    """The one object of that kind and name, or a test failure."""
    found = [d for _, d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]  # type: ignore[index]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def image_layout(tmp_path: Path, config_text: str) -> Path:
    """Lay out /app as the image does, with ``config_text`` as helpline.yml; return that file."""
    app = tmp_path / "app"
    (app / "var").mkdir(parents=True)
    (app / "flows").symlink_to(ROOT / "flows")
    (app / "healthcheck.py").symlink_to(DOCKER / "healthcheck.py")
    models = app / "var" / "models"
    models.mkdir()
    # Prepared models are shared read-only; the NLU cache is written at startup.
    for entry in (ROOT / "var" / "models").iterdir():
        if entry.name != "nlu":
            (models / entry.name).symlink_to(entry)
    config = app / "helpline.yml"
    config.write_text(config_text)
    return config


def without_pending_sections(text: str) -> str:
    """Drop top-level sections our Config does not know yet (``redis:`` lands with its issue)."""
    from bot.config import Config

    document = yaml.safe_load(text)
    unknown = set(document) - set(Config.model_fields)
    if unknown <= {"redis"}:
        for key in unknown:
            document.pop(key)
    return yaml.safe_dump(document, sort_keys=False)


@pytest.fixture
def compose_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The variables docker/.env would hold, set in our environment."""
    env = {"POSTGRES_PASSWORD": "s3cret", "OPENAI_API_KEY": "", "HELPLINE_WIDGET_ORIGIN": "*"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **env}
