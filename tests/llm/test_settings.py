"""``llm.local.url``: one URL or a list of model workers, validated where it is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_config, validate_llm_section
from bot.errors import ConfigError
from llm.settings import LLMSettings, worker_base_url


def _settings(tmp_path: Path, url_yaml: str) -> LLMSettings:
    path = tmp_path / "helpline.yml"
    path.write_text(f"llm:\n  local:\n    url: {url_yaml}\n")
    return validate_llm_section(load_config(path), LLMSettings)


def test_one_url_is_a_pool_of_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "http://127.0.0.1:8081")
    assert settings.local.url == ("http://127.0.0.1:8081/v1",)


def test_a_list_keeps_its_order_and_paths(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "[http://a:8000/v1/, 'https://b.example/tgi/v1']")
    assert settings.local.url == ("http://a:8000/v1", "https://b.example/tgi/v1")


@pytest.mark.parametrize("empty", ["''", "null"])
def test_empty_means_in_process(tmp_path: Path, empty: str) -> None:
    assert _settings(tmp_path, empty).local.url is None


def test_the_default_loads_in_process() -> None:
    assert LLMSettings().local.url is None


@pytest.mark.parametrize(
    ("url_yaml", "reason"),
    [
        ("ftp://a:21", "'ftp://a:21' is not an http:// or https:// URL with a host"),
        ("[http://a:1, 'http:///v1']", "item 1: 'http:///v1' is not an http://"),
        ("[http://a:1, http://a:1/v1]", "item 1: 'http://a:1/v1' is listed twice"),
        ("[]", "must be a URL or a non-empty list of URLs"),
        ("{host: a}", "must be a URL or a non-empty list of URLs"),
        ("http://a:99999", "is not an http:// or https:// URL"),
        ("[7]", "item 0: 7 is not an http://"),
    ],
)
def test_a_bad_url_names_file_line_and_key(tmp_path: Path, url_yaml: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(tmp_path, url_yaml)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'helpline.yml'}:3: llm.local.url: ")
    assert reason in message


def test_worker_base_url() -> None:
    assert worker_base_url("http://h") == "http://h/v1"
    assert worker_base_url(" http://h:1/ ") == "http://h:1/v1"
    assert worker_base_url("http://h/v1?x=1") is None
    assert worker_base_url(None) is None


def _api(tmp_path: Path, api_yaml: str) -> LLMSettings:
    path = tmp_path / "helpline.yml"
    path.write_text(f"llm:\n  api:\n{api_yaml}")
    return validate_llm_section(load_config(path), LLMSettings)


def test_api_keys_may_be_plain_strings_and_default_to_api_priority(tmp_path: Path) -> None:
    api = _api(tmp_path, "    listen: own\n    keys: [sk-0123456789abcdef]\n").api
    assert [(k.key, k.priority, k.requests_per_minute) for k in api.keys] == [
        ("sk-0123456789abcdef", "api", None)
    ]
    assert (api.host, api.max_tokens) == ("127.0.0.1", 512)


@pytest.mark.parametrize(
    ("api_yaml", "reason"),
    [
        ("    keys: [short]\n", "at least 16"),
        ("    keys: [sk-0123456789abcdef, sk-0123456789abcdef]\n", "listed twice"),
        ("    listen: own\n", "allow_anonymous"),
    ],
)
def test_bad_api_settings_name_the_key(tmp_path: Path, api_yaml: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        _api(tmp_path, api_yaml)
