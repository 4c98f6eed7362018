"""Runtime settings, read from the environment (prefix ``NEXTBEST_``) at entrypoints only.

Engine code never reads settings: entrypoints build one ``Settings`` and pass values down.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEXTBEST_", extra="forbid")

    database_path: Path = Path("data/nextbest.duckdb")
    # HMAC pepper for API keys. When unset, a random per-database pepper is generated once
    # and kept beside the database file (``<db>.pepper``, mode 0600).
    api_key_pepper: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    rate_limit_per_minute: int = Field(default=1000, ge=1)
    demo_api_key: SecretStr | None = None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
