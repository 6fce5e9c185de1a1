"""Settings come from the environment and bad values stop the start with a clear message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.settings import Settings, SettingsError, get_settings


def test_bad_database_url_is_explained(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/db")
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as error:
            get_settings()
        assert "DATABASE_URL" in str(error.value) and "unsupported scheme 'mysql'" in str(error.value)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_production_requires_a_secret_key():
    with pytest.raises(ValueError, match="SECRET_KEY must be set in production"):
        Settings(crowdmade_env="production", secret_key=None, _env_file=None)


def test_cli_exits_with_a_clear_message_for_a_bad_value():
    import os

    env = {**os.environ, "DATABASE_URL": "sqlite:/", "SMTP_URL": "http://nope"}
    result = subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "SMTP_URL" in result.stderr
