"""Every setting Easel reads, with its environment name, default and validation.

Built in `main()` (never at import time) so tests and tools can construct their own.
The names are fixed: deployments and `.env.example` depend on them.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.providers.flair.routes import Routes
from bot.quotas.policy import Period, QuotaPolicy


def _default(name: str, fallback: str) -> str:
    """A default the environment may change (EASEL_DEFAULT_<name>), for container images."""
    return os.environ.get(f"EASEL_DEFAULT_{name}", "").strip() or fallback


def _id_list(value: object, problem: str) -> object:
    if isinstance(value, str):
        try:
            return [int(part) for part in value.replace(" ", "").split(",") if part] or None
        except ValueError as exc:
            raise ValueError(problem) from exc
    return value


class CommandSync(StrEnum):
    AUTO = "auto"  # sync only when the command tree changed since the last sync
    ALWAYS = "always"
    NEVER = "never"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    # Discord
    discord_token: SecretStr | None = None
    discord_api_base_url: AnyHttpUrl = AnyHttpUrl("https://discord.com/api/v10")
    discord_gateway_url: str | None = None
    dev_guild_id: int | None = None
    command_sync: CommandSync = CommandSync.AUTO
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: Annotated[list[int] | None, NoDecode] = None
    # Who may use this bot: server ids (blank = any server that adds it); others are left at once.
    allowed_guild_ids: Annotated[list[int] | None, NoDecode] = None

    # Storage and the bot's own web server
    # Defaults come from EASEL_DEFAULT_* when set: the Docker image sets them, so a .env made from the example
    # (which leaves these blank) puts the database in the volume and listens where published ports reach.
    database_path: Path = Field(default_factory=lambda: Path(_default("DATABASE_PATH", "./data/easel.db")))
    http_host: str = Field(default_factory=lambda: _default("HTTP_HOST", "127.0.0.1"))
    http_port: int = Field(default=8080, ge=0, le=65535)
    public_url: AnyHttpUrl | None = None
    # Links to the originals of results shrunk to fit Discord (served only with PUBLIC_URL set)
    result_link_hours: float = Field(default=24.0, gt=0)
    result_link_secret: SecretStr | None = None  # blank: a key made once and kept in the database

    # Job engine: how often to poll, and each provider's limits (documented in .env.example)
    poll_min_seconds: float = Field(default=3.0, gt=0)
    poll_max_seconds: float = Field(default=300.0, gt=0)
    mimpi_max_concurrent_models: int = Field(default=30, ge=1)
    imagine_requests_per_minute: int = Field(default=50, ge=1)
    provider_parallel_requests: int = Field(default=20, ge=1)

    # Portrait models (mimpi): photos in a training set
    portrait_min_images: int = Field(default=10, ge=1)
    portrait_recommended_images: int = Field(default=20, ge=1)
    portrait_max_images: int = Field(default=40, ge=1)

    # Style models (Flair): images in a style's training set (Flair publishes no counts: these are Easel's)
    style_min_images: int = Field(default=5, ge=1)
    style_recommended_images: int = Field(default=10, ge=1)
    style_max_images: int = Field(default=30, ge=1)

    # Quotas: defaults for servers whose admins set nothing, and the policy for DMs (no admins there)
    quota_server_allowance: int = Field(default=20, ge=0)
    quota_server_period: Literal["daily", "weekly", "monthly"] = "daily"
    quota_server_reset_hour: int = Field(default=0, ge=0, le=23)
    quota_dm_allowance: int = Field(default=10, ge=0)
    quota_dm_period: Literal["daily", "weekly", "monthly"] = "daily"
    quota_dm_reset_hour: int = Field(default=0, ge=0, le=23)
    quota_dm_budget: int | None = Field(default=None, ge=0)
    quota_costs: dict[str, int] = Field(default_factory=dict)  # JSON, e.g. {"pbn": 5}
    # A result button that would spend more than this asks the presser to confirm first.
    confirm_above_credits: int = Field(default=5, ge=0)
    # Paid features in DMs: off unless the owner turns them on (then the QUOTA_DM_* policy applies).
    dm_paid_features: bool = False

    # Content rules: the owner's defaults (each server's admins set their own with /rules-admin)
    content_age_restricted_only: bool = False  # servers that set nothing: generation only in NSFW channels
    content_age_restricted_only_dms: bool = False  # DMs have no age-restricted channels: on refuses DMs

    # Retention: files older than this many days are removed (None: kept); training photos once trained
    retention_days: float | None = Field(default=None, gt=0)
    retention_remove_trained_photos: bool = True

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Providers: a provider without a key is off.
    mimpi_api_key: SecretStr | None = None
    mimpi_base_url: AnyHttpUrl = AnyHttpUrl("https://www.mimpi.ai/api")
    mimpi_signed_url_method: Literal["POST", "GET"] = "POST"
    flair_api_key: SecretStr | None = None
    flair_base_url: AnyHttpUrl | None = None
    flair_auth_header: str = "API-Key"
    # Where each Flair operation lives, e.g. {"rename_model": "PUT /models/{model_id}/name"} (JSON): the seed
    # gives no paths, so a deployment corrects them without a release. Empty: the defaults of routes.py.
    flair_paths: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    mimipanda_api_token: SecretStr | None = None
    mimipanda_base_url: AnyHttpUrl = AnyHttpUrl("https://mimi-panda.com/api/service")
    imagine_api_key: SecretStr | None = None
    imagine_base_url: AnyHttpUrl = AnyHttpUrl("https://api.vyro.ai/v2")

    # Easel's own studio: on the bot's machine, in worker processes, free by default.
    local_studio_enabled: bool = True
    local_workers: int | None = Field(default=None, ge=1)  # blank: cores - 1 (at least 1)
    local_job_timeout_seconds: float = Field(default=120.0, gt=0)
    local_job_memory_mb: int = Field(default=1024, ge=128)
    local_max_waiting_per_member: int = Field(default=2, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: object) -> object:
        # `FOO=` (as `.env.example` ships most lines) means "not set": the default applies, for every field.
        # env_ignore_empty does this for the environment and .env; this covers values passed in code too.
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}
        return values

    @field_validator("flair_paths", mode="before")
    @classmethod
    def _blank_paths(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return {}
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("flair_paths")
    @classmethod
    def _known_paths(cls, value: dict[str, str]) -> dict[str, str]:
        Routes(value)  # unknown operations and malformed templates fail at start, not at the first request
        return value

    @field_validator("retention_days", mode="before")
    @classmethod
    def _blank_keeps(cls, value: object) -> object:
        # RETENTION_DAYS= (blank) means keep files for ever.
        return None if isinstance(value, str) and not value.strip() else value

    # A blank line in .env means "not set": the default, not a parse error.
    @field_validator("content_age_restricted_only", "content_age_restricted_only_dms", mode="before")
    @classmethod
    def _blank_is_off(cls, value: object) -> object:
        return False if isinstance(value, str) and not value.strip() else value

    @field_validator("retention_remove_trained_photos", mode="before")
    @classmethod
    def _blank_is_on(cls, value: object) -> object:
        return True if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _parse_shard_ids(cls, value: object) -> object:
        return _id_list(value, "must be a comma-separated list of shard numbers, e.g. 0,1")

    @field_validator("allowed_guild_ids", mode="before")
    @classmethod
    def _parse_guild_ids(cls, value: object) -> object:
        return _id_list(value, "must be a comma-separated list of server ids, e.g. 1234,5678")

    @field_validator("discord_gateway_url")
    @classmethod
    def _gateway_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value

    @field_validator("quota_costs")
    @classmethod
    def _known_features(cls, value: dict[str, int]) -> dict[str, int]:
        # QuotaPolicy owns the rules for costs (known features, not negative); ask it instead of repeating them.
        try:
            QuotaPolicy(costs=value)
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return value

    @model_validator(mode="after")
    def _shards_consistent(self) -> Settings:
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("SHARD_IDS needs SHARD_COUNT")
            bad = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
            if bad:
                raise ValueError(f"SHARD_IDS {bad} out of range for SHARD_COUNT={self.shard_count}")
        return self

    # Derived values

    def quota_policy(self) -> QuotaPolicy:
        return QuotaPolicy(
            server_allowance=self.quota_server_allowance,
            server_period=Period(self.quota_server_period),
            server_reset_hour=self.quota_server_reset_hour,
            dm_allowance=self.quota_dm_allowance,
            dm_period=Period(self.quota_dm_period),
            dm_reset_hour=self.quota_dm_reset_hour,
            dm_budget=self.quota_dm_budget,
            costs=self.quota_costs,
        )

    @property
    def data_dir(self) -> Path:
        return self.database_path.parent

    @property
    def api_base(self) -> str:
        return str(self.discord_api_base_url).rstrip("/")

    def provider_enabled(self) -> dict[str, bool]:
        return {
            "mimipanda": self.mimipanda_api_token is not None,
            "mimpi": self.mimpi_api_key is not None,
            "flair": self.flair_api_key is not None and self.flair_base_url is not None,
            "imagine": self.imagine_api_key is not None,
            "local": self.local_studio_enabled,
        }

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        values = [
            self.discord_token,
            self.mimpi_api_key,
            self.flair_api_key,
            self.mimipanda_api_token,
            self.imagine_api_key,
            self.result_link_secret,
        ]
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


class SettingsError(Exception):
    """Settings could not be loaded; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_settings(**overrides: object) -> Settings:
    """Read the environment and `.env`; raise SettingsError with one readable line per problem."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
            message = error["msg"].removeprefix("Value error, ")
            given = error.get("input")
            shown = (
                ""
                if isinstance(given, dict) or "key" in name.lower() or "token" in name.lower()
                else f" (got {given!r})"
            )
            problems.append(f"{name}: {message}{shown}")
        raise SettingsError(problems) from None
