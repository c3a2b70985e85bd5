"""Helpers for the cloud tests: provider settings aimed at a fake server."""

from __future__ import annotations

from typing import Any

from llm.settings import CloudProviderSettings
from tests.llm.cloud.fake_openai import FakeOpenAI


def provider_for(server: FakeOpenAI, name: str = "a", **overrides: Any) -> CloudProviderSettings:
    """Return fast-failing settings for a provider served by ``server``."""
    values: dict[str, Any] = {
        "name": name,
        "base_url": server.base_url,
        "model": f"model-{name}",
        "timeout_s": 2.0,
        "max_retries": 0,
        "backoff_base_s": 0.001,
        "backoff_max_s": 1.0,
        "circuit_failures": 3,
        "circuit_reset_s": 30.0,
    }
    values.update(overrides)
    return CloudProviderSettings(**values)
