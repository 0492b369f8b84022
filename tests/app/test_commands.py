"""`pcclip serve` wiring: flags over environment, early errors for bad values."""

from __future__ import annotations

import pytest
import typer

from app import commands


def test_flags_override_the_environment(monkeypatch):
    monkeypatch.setenv("PCCLIP_PORT", "9001")
    monkeypatch.setenv("PCCLIP_MODEL", "tiny-base")
    assert commands.build_settings(port=None, model=None).port == 9001
    settings = commands.build_settings(port=1234, model="tiny", host="0.0.0.0", device="cpu")
    assert (settings.port, settings.model, settings.host, settings.device) == (1234, "tiny", "0.0.0.0", "cpu")


def test_a_bad_model_spec_fails_before_serving():
    with pytest.raises(typer.BadParameter, match="expected one of"):
        commands.build_settings(model="resnet-9000")


def test_a_bad_device_fails_before_serving():
    with pytest.raises(typer.BadParameter, match="device"):
        commands.build_settings(device="tpu")


def test_serve_runs_uvicorn_with_the_app(monkeypatch):
    seen = {}

    def fake_run(app, **options):
        seen["app"], seen["options"] = app, options

    monkeypatch.setattr("uvicorn.run", fake_run)
    commands.serve(model="tiny-base", port=8123, host="127.0.0.1", device="cpu")
    assert seen["options"]["port"] == 8123 and seen["options"]["host"] == "127.0.0.1"
    assert seen["app"].state.settings.model == "tiny-base"
    assert seen["options"]["proxy_headers"] is False  # X-Forwarded-For believed from no one by default
    assert seen["options"]["http"].keywords["max_connections"] == 1000


def test_serve_trusts_forwarded_headers_from_the_configured_proxies_only(monkeypatch):
    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **options: seen.update(options))
    commands.serve(model="tiny-base", set_=["forwarded_allow_ips=10.0.0.0/8"])
    assert seen["proxy_headers"] is True and seen["forwarded_allow_ips"] == "10.0.0.0/8"


def test_any_setting_can_be_set_with_set(monkeypatch):
    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **options: seen.update(app=app))
    commands.serve(model="tiny-base", set_=["max_batch=7", "PCCLIP_ALLOW_URL_FETCH=true"])
    settings = seen["app"].state.settings
    assert settings.max_batch == 7 and settings.allow_url_fetch is True


@pytest.mark.parametrize("assignment", ["max_batch", "no_such_setting=1"])
def test_bad_set_assignments_are_refused(assignment):
    with pytest.raises(typer.BadParameter, match="NAME=VALUE"):
        commands.parse_assignments([assignment])
