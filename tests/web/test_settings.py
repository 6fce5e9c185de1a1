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
        Settings(crowdmade_env="production", secret_key=None, smtp_url="smtp://mail.example.com", _env_file=None)


def test_cli_exits_with_a_clear_message_for_a_bad_value():
    import os

    env = {**os.environ, "DATABASE_URL": "sqlite:/", "SMTP_URL": "http://nope"}
    result = subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "SMTP_URL" in result.stderr


async def test_huge_numbers_in_urls_are_not_found_not_errors(client):
    for url in ("/ideas/99999999999999999999", "/ideas/3000000000", "/ideas?page=99999999999999999999",
                "/api/v1/ideas/3000000000", "/members/x" + "9" * 30):
        response = await client.get(url)
        assert response.status_code in (200, 404), (url, response.status_code)


async def test_dev_mailbox_is_only_for_this_machine(database):
    import httpx

    from app.asgi import create_app

    app = create_app(run_jobs=False, manage_database=False)
    remote = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=remote, base_url="http://testserver.local") as visitor:
        assert (await visitor.get("/dev/mailbox")).status_code == 403
    local = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=local, base_url="http://testserver.local") as me:
        assert (await me.get("/dev/mailbox")).status_code == 200
        assert (await me.get("/dev/mailbox", headers={"X-Forwarded-For": "203.0.113.9"})).status_code == 403


def test_production_needs_smtp():
    with pytest.raises(ValueError, match="SMTP_URL must be set in production"):
        Settings(crowdmade_env="production", secret_key="x" * 40, smtp_url=None, _env_file=None)
