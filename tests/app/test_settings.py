"""Settings: PCCLIP_* environment variables, documented fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import Settings, get_settings


def test_environment_variables_with_the_prefix_are_read(monkeypatch):
    monkeypatch.setenv("PCCLIP_MODEL", "openclip:ViT-B-32/random")
    monkeypatch.setenv("PCCLIP_API_KEY", "abc")
    monkeypatch.setenv("PCCLIP_MAX_BATCH", "7")
    monkeypatch.setenv("PCCLIP_ALLOW_URL_FETCH", "true")
    settings = Settings(_env_file=None)
    assert settings.model == "openclip:ViT-B-32/random"
    assert settings.api_key.get_secret_value() == "abc"
    assert "abc" not in repr(settings)  # the key never shows in logs
    assert settings.max_batch == 7 and settings.allow_url_fetch is True


def test_defaults_are_safe_for_local_use():
    settings = Settings(_env_file=None)
    assert settings.model == "tiny" and settings.port == 8000
    assert settings.api_key is None and settings.allow_url_fetch is False and settings.rate_limit is None
    assert settings.forwarded_allow_ips == ""  # no proxy trusted: X-Forwarded-For is ignored


def test_every_setting_is_described():
    for name, field in Settings.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize(("name", "value"), [("PCCLIP_DEVICE", "tpu"), ("PCCLIP_MAX_BATCH", "0"), ("PCCLIP_PORT", "x")])
def test_bad_values_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_trusted_proxies_are_addresses_or_networks():
    assert Settings(_env_file=None, forwarded_allow_ips=" 10.0.0.1, 10.1.0.0/16 ,::1").forwarded_allow_ips == (
        "10.0.0.1,10.1.0.0/16,::1"
    )
    assert Settings(_env_file=None, forwarded_allow_ips="*").forwarded_allow_ips == "*"
    for bad, problem in [("10.0.0.300", "not an IP address"), ("lb.internal", "not an IP address"),
                         ("10.0.0.1/8", "not an IP address"), ("*,10.0.0.1", "stands alone")]:  # fmt: skip
        with pytest.raises(ValidationError, match=problem):
            Settings(_env_file=None, forwarded_allow_ips=bad)


def test_get_settings_is_cached():
    get_settings.cache_clear()
    assert get_settings() is get_settings()
    get_settings.cache_clear()
