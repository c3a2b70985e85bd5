"""The ``connectors.email`` section: validation with key paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_config, validate_section
from bot.errors import ConfigError
from connectors.email import SPEC, EmailConfig


def section(tmp_path: Path, yaml: str) -> EmailConfig:
    (tmp_path / "helpline.yml").write_text(f"connectors:\n  email:\n{yaml}")
    config = load_config(tmp_path / "helpline.yml")
    return validate_section(config, "email", SPEC.config)  # type: ignore[return-value]


def test_defaults_are_off_and_safe() -> None:
    config = EmailConfig()
    assert config.enabled is False
    assert config.imap.ssl is True
    assert config.smtp.starttls is True
    assert config.idle is True


def test_enabled_needs_our_address(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"connectors\.email"):
        section(tmp_path, "    enabled: true\n")
    ok = section(tmp_path, "    enabled: true\n    address: help@shop.example\n")
    assert ok.domain == "shop.example"


def test_one_tls_mode_and_no_unknown_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="imap"):
        section(tmp_path, "    imap: {ssl: true, starttls: true}\n")
    with pytest.raises(ConfigError, match="pop3"):
        section(tmp_path, "    pop3: {}\n")


def test_passwords_stay_out_of_reprs(tmp_path: Path) -> None:
    config = section(tmp_path, "    imap: {password: hunter2}\n    smtp: {password: hunter3}\n")
    assert "hunter2" not in repr(config)
    assert "hunter3" not in repr(config)
    assert config.imap.password.get_secret_value() == "hunter2"
