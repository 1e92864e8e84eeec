"""Settings: every one documented in .env.example, and the defaults that differ between
development and production."""

import re
from pathlib import Path

from backend.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from .env.example"
    assert documented - fields == set(), ".env.example names settings that do not exist"


def test_production_drains_for_5_seconds_and_development_not_at_all() -> None:
    development = Settings(_env_file=None)  # type: ignore[call-arg]
    production = Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    configured = Settings(_env_file=None, shutdown_drain_seconds=2)  # type: ignore[call-arg]

    assert (development.drain_seconds, production.drain_seconds) == (0, 5)
    assert configured.drain_seconds == 2
