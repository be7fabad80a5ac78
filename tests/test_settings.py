"""Settings fail fast: a production configuration with development defaults refuses to start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from certflow.settings import Settings


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="CERTFLOW_SECRET_KEY"):
        Settings(env="production", clock_controllable=False)


def test_production_refuses_a_movable_clock() -> None:
    with pytest.raises(ValidationError, match="CLOCK_CONTROLLABLE"):
        Settings(env="production", secret_key="s3cret-from-the-vault")


def test_embedded_defaults_need_no_server(tmp_path) -> None:
    settings = Settings(var_dir=tmp_path, database_url="", redis_url="")
    assert settings.database_url == f"sqlite:///{tmp_path / 'certflow.sqlite'}"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    assert Settings(var_dir=tmp_path, redis_url="redis://h:6379/0").broker_url == "redis://h:6379/0"
