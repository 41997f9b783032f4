"""The ``docket`` command: database, API keys, workers and the embedded all-in-one server.

Other commands join the same group from their own modules with
``main.add_command``; this module stays at the edge and nothing in
``service`` imports it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import click
from sqlalchemy import func, select

from config.settings import get_settings
from service import db, redact
from service.app import create_app
from service.auth import create_api_key
from service.cli_clients import COMMANDS as CLIENTS_COMMANDS
from service.cli_engine import COMMANDS as ENGINE_COMMANDS
from service.cli_models import COMMANDS as MODELS_COMMANDS
from service.cli_stats import COMMANDS as STATS_COMMANDS
from service.cli_users import COMMANDS as USERS_COMMANDS
from service.exceptions import DocketError
from service.extract.engine import ModelNotFound
from service.logs import configure_logging
from service.models import SCOPES, ApiKey
from service.queue import QUEUES, TRAINING, connect_redis, start_embedded_redis, stop_embedded_redis
from service.tasks import get_engine, init_runtime, make_worker

log = logging.getLogger(__name__)


@click.group()
def main() -> None:
    """Docket: document extraction with a small model and a human in the loop."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    redact.install(settings)


# --- docket db ---------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """The database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    url = get_settings().database_uri
    db.upgrade(url, revision)
    click.echo(f"database at {revision}: {db.Database(url).engine.url.render_as_string(hide_password=True)}")


@db_group.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (default: one step; 'base' empties it)."""
    db.downgrade(get_settings().database_uri, revision)
    click.echo(f"database at {revision}")


# --- docket keys -------------------------------------------------------------


@main.group("keys")
def keys_group() -> None:
    """API keys."""


@keys_group.command("create")
@click.option("--name", required=True, help="The API client the key belongs to (created if new).")
@click.option("--scopes", required=True, help=f"Comma-separated, from: {','.join(SCOPES)}.")
def keys_create(name: str, scopes: str) -> None:
    """Create an API key and print it. It is shown this once and stored only hashed."""
    database = db.Database(get_settings().database_uri)
    try:
        with database.session() as session:
            key, api_key = create_api_key(session, name, scopes)
            click.echo(key)
            click.echo(f"client {name}, scopes {','.join(api_key.scopes)}: store it now, it is not shown again", err=True)
    except DocketError as exc:
        raise click.UsageError(exc.detail) from None
    finally:
        database.dispose()


# --- docket worker -----------------------------------------------------------

SERVING_QUEUES = tuple(q for q in QUEUES if q != TRAINING)


@main.command("worker")
@click.option("--queue", "-q", "queues", multiple=True, type=click.Choice(QUEUES),
              help="Queues to serve (default: extraction and notifications; training only when named).")
@click.option("--burst", is_flag=True, help="Quit when the queues are empty.")
@click.option("--preload/--no-preload", default=True, help="Load the model before taking jobs.")
def worker(queues: tuple[str, ...], burst: bool, preload: bool) -> None:
    """Run an rq worker: by default on the extraction and notification queues.

    Retraining runs wait on the training queue for a worker started with
    ``-q training`` (it needs the training extra, torch): an extraction worker
    never imports torch, and a long run never holds up extraction.
    """
    settings = get_settings()
    init_runtime(settings)
    queues = queues or SERVING_QUEUES
    if preload and queues != (TRAINING,):
        try:
            log.info("model %s loaded", get_engine(settings).model_version)
        except ModelNotFound as exc:
            log.warning("%s; extraction jobs will fail until the model is built (make model)", exc)
    connection = connect_redis(settings)
    worker = make_worker(connection, queues, maintenance_interval=settings.maintenance_interval_s)
    # The scheduler moves retries waiting out their backoff (webhook deliveries) back onto their queue.
    worker.work(burst=burst, logging_level="INFO", with_scheduler=True)


# --- docket run --------------------------------------------------------------


def ensure_local_key() -> None:
    """On a fresh embedded install, make one all-scopes key for the person at the keyboard."""
    database = db.Database(get_settings().database_uri)
    try:
        with database.session() as session:
            if session.scalar(select(func.count()).select_from(ApiKey)):
                return
            key, _ = create_api_key(session, "local", SCOPES)
        click.echo(f"\nAPI key for this machine (shown once): {key}\n  curl -H 'Authorization: Bearer {key}' "
                   "http://127.0.0.1:8000/v1/schemas\n", err=True)
    finally:
        database.dispose()


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def run(host: str, port: int) -> None:
    """Everything on one machine: embedded Redis (unless REDIS_URL is set), the workers, the API.

    Two workers: one for extraction and notifications, one for retraining runs.
    """
    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    db.upgrade(settings.database_uri)
    server = None
    if settings.embedded_redis:
        server = start_embedded_redis(settings)
        os.environ["DOCKET_REDIS_URL"] = f"unix://{server.socket_file}"
        get_settings.cache_clear()
        settings = get_settings()
    ensure_local_key()

    def stop(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    workers = [subprocess.Popen([sys.executable, "-m", "service.cli", "worker", *args], env=os.environ.copy())
               for args in ([], ["--queue", TRAINING])]
    try:
        app = create_app(settings)
        click.echo(f"Docket on http://{host}:{port} (docs: http://{host}:{port}/docs/swagger/)", err=True)
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        stop_workers(workers, settings.job_timeout_s)
        if server is not None:
            stop_embedded_redis(server)
        click.echo("stopped", err=True)


COLD_STOP_S = 15  # after a cold shutdown, how long a worker gets to put its job back before it is killed


def stop_workers(workers: list[subprocess.Popen], job_timeout_s: int) -> None:
    """Stop the workers before the Redis they use: warm first, cold if that takes too long or is asked for.

    SIGTERM is rq's warm shutdown: a worker finishes the job in hand (at most
    a job timeout) and exits. A second SIGTERM or Ctrl-C to ``docket run``
    meanwhile is passed on, which is rq's cold shutdown: the job stops and goes
    back to the queue. A worker still there after that is killed.
    """
    def pass_on(_signum=None, _frame=None) -> None:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    pass_on()
    if wait_all(workers, job_timeout_s):
        return
    pass_on()  # taking longer than a job may: cold shutdown
    if wait_all(workers, COLD_STOP_S):
        return
    for proc in workers:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_all(procs: list[subprocess.Popen], timeout_s: float) -> bool:
    """Wait up to *timeout_s* in all for every process to exit; whether they did."""
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
    return True


for _command in [*CLIENTS_COMMANDS, *ENGINE_COMMANDS, *MODELS_COMMANDS, *STATS_COMMANDS, *USERS_COMMANDS]:
    main.add_command(_command)


if __name__ == "__main__":
    main()
