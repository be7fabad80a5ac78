"""One settings object for every process (web, worker, beat, CLI), validated at start.

Values come from the environment (``DATABASE_URL``, ``REDIS_URL`` and ``CERTFLOW_*``) or a
``.env`` file. A production configuration that still carries a development default refuses
to start, rather than run insecurely.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-only-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CERTFLOW_", env_file=".env", extra="ignore", populate_by_name=True)

    env: Literal["development", "test", "production"] = "development"
    secret_key: str = DEV_SECRET
    var_dir: Path = ROOT / "var"
    processes_dir: Path = ROOT / "processes"

    # Not prefixed: these are the names operators and platforms expect.
    database_url: str = Field(default="", validation_alias="DATABASE_URL")
    redis_url: str = Field(default="", validation_alias="REDIS_URL")

    # Time may be moved forward only where it is allowed (tests, the demo).
    clock_controllable: bool = True

    job_max_attempts: int = 5
    job_backoff_seconds: float = 2.0
    # A job still unclaimed this long after it was written is published again.
    sweep_after_seconds: float = 30.0
    # A job a worker took but never finished is taken for lost (worker killed) after this long;
    # shorter would run a long job (a big fan-out) twice at once.
    running_lost_after_seconds: float = 900.0
    # Messages routed inline after the job that emitted them; a bigger fan-out is left to beat,
    # which routes them in batches of drain_batch per tick.
    inline_drain_limit: int = 50
    # A worker runs up to this many follow-up jobs of the instance it just advanced itself,
    # in the same process (its live workflow is cached there), before publishing the rest.
    # 0 publishes every job to the broker.
    job_chain_limit: int = 20
    drain_batch: int = 500
    # Messages that start instances are started up to this many per transaction
    # (certflow.engine.messaging: one pick, bulk writes); 1 starts each in its own.
    start_batch: int = Field(default=50, ge=1, le=1000)
    beat_interval_seconds: float = 2.0
    # A pooled PostgreSQL connection that sat idle longer than this is checked (a round trip)
    # before it is used again; one used more recently is not (certflow.store.db). 0 checks
    # every use, as SQLAlchemy's pool_pre_ping does.
    db_ping_idle_seconds: float = Field(default=5.0, ge=0)
    # psycopg prepares a statement on the server once it ran more than this many times on a
    # connection (its prepare_threshold): PostgreSQL then skips parsing and planning it. 1
    # prepares on the second run, psycopg's default of 5 on the sixth: a process's hot
    # statements run unprepared on each of its pooled connections for a while first (~13% of
    # PostgreSQL's CPU per lifecycle in bench/engine.py (c)), while 1 still leaves statements
    # run once unprepared. ``off`` never prepares: for a PgBouncer in transaction mode that
    # does not track prepared statements (before 1.21, or max_prepared_statements = 0).
    db_prepare_threshold: int | None = Field(default=1, ge=0)
    # Due timers are fired this many instances per transaction (certflow.engine.timers), and a
    # tick fires for at most timer_budget_seconds: a longer backlog is shared by the ticks that
    # follow, running side by side on the worker processes.
    timer_batch: int = 50
    timer_budget_seconds: float = 20.0

    # Browser sessions and sign-in (certflow.services.access).
    session_idle_minutes: int = 120
    session_max_hours: int = 12
    sign_in_window_minutes: int = 15
    sign_in_max_failures_per_email: int = 5
    sign_in_max_failures_per_ip: int = 50
    password_reset_minutes: int = 60
    # Mail that anyone can ask for (a reset link, a sign-up's link): at most this many per
    # address (per kind) and per client IP (all kinds) in a window (certflow.services.access).
    mail_request_window_minutes: int = 60
    mail_requests_per_address: int = 3
    mail_requests_per_ip: int = 20
    # How long the link that confirms a sign-up works (certflow.services.sign_ups).
    sign_up_confirm_hours: int = 24
    # How long the link that confirms a person's new e-mail address works
    # (certflow.services.email_changes).
    email_change_confirm_hours: int = 24
    # argon2id cost (RFC 9106's second recommendation); tests lower it to stay fast.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    # Logs: JSON lines (one object per line, with request/instance/task/job ids) or text.
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    # Worker and beat serve their own /metrics on this port (0: none). Web serves /metrics
    # itself; when metrics_token is set, /metrics wants it as a Bearer token.
    metrics_port: int = 0
    metrics_token: str = ""
    # certflow doctor: a due timer or an unclaimed job older than this is reported.
    doctor_lag_seconds: float = 300.0

    # Where people reach the web application; links in emails (Mijn CMI, invoices) start here.
    public_url: str = "http://localhost:8000"

    certificate_validity_years: int = 3
    # The broker queue jobs and ticks travel on; separate deployments (or test runs) sharing
    # one Redis use different names.
    queue: str = "certflow"
    # Extra modules that register handlers (a deployment's own, or tests'), comma-separated.
    handler_modules: str = ""

    smtp_host: str = ""
    smtp_port: int = 25
    smtp_tls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    mail_from: str = "CMI Bureau <bureau@cmi-loopbaanprofessional.example>"

    supplier_name: str = "Stichting CMI"
    supplier_address: str = "Postbus 1234, 3500 AA Utrecht, Nederland"
    supplier_vat_id: str = "NL001234567B01"
    supplier_kvk: str = "12345678"
    supplier_iban: str = "NL91ABNA0417164300"
    supplier_bic: str = "ABNANL2A"

    @field_validator("db_prepare_threshold", mode="before")
    @classmethod
    def _off_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in ("off", "none", "") else value

    @model_validator(mode="after")
    def _fill_defaults_and_refuse_unsafe(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'certflow.sqlite'}"
        if self.env == "production":
            if self.secret_key == DEV_SECRET:
                raise ValueError("CERTFLOW_SECRET_KEY must be set in production")
            if self.clock_controllable:
                raise ValueError("CERTFLOW_CLOCK_CONTROLLABLE must be false in production")
            if self.argon2_memory_kib < 19456 or self.argon2_time_cost < 2:
                raise ValueError("CERTFLOW_ARGON2_* below OWASP's minimum (19456 KiB, t=2)")
        return self

    @property
    def broker_url(self) -> str:
        """Redis when configured; otherwise kombu's SQLAlchemy transport on a local SQLite file,
        so the embedded default runs a real worker with no server to install."""
        if self.redis_url:
            return self.redis_url
        return f"sqla+sqlite:///{self.var_dir / 'broker.sqlite'}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    settings = Settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return settings


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
