"""The docket command, run as a real process: migrations, API keys, and `docket run` end to end."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from sqlalchemy import create_engine, inspect, select

from service.models import ApiKey
from tests.conftest import ROOT, wait_until


def docket(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def cli_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKET_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env["DOCKET_VAR_DIR"] = str(tmp_path / "var")
    env["DOCKET_MODEL_CACHE_DIR"] = str(tmp_path / "no-models")
    env["DOCKET_EVAL_SHARED"] = "0"  # a training worker scores no guard ahead (service.warmup) unless a test asks
    return env


def test_db_upgrade_and_downgrade(cli_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'var' / 'docket.sqlite3'}"
    up = docket(cli_env, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    engine = create_engine(url)
    assert "documents" in inspect(engine).get_table_names()
    down = docket(cli_env, "db", "downgrade", "base")
    assert down.returncode == 0, down.stderr
    engine.dispose()
    engine = create_engine(url)
    assert "documents" not in inspect(engine).get_table_names()
    engine.dispose()


def test_keys_create_prints_the_key_once_and_stores_its_hash(cli_env, tmp_path):
    assert docket(cli_env, "db", "upgrade").returncode == 0
    made = docket(cli_env, "keys", "create", "--name", "erp", "--scopes", "submit,read")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert re.fullmatch(r"dk_[0-9a-f]{12}_[\w-]{40,}", key)
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'docket.sqlite3'}")
    with engine.connect() as conn:
        row = conn.execute(select(ApiKey.__table__)).one()
    engine.dispose()
    assert row.scopes == ["read", "submit"]
    assert key not in json.dumps([str(v) for v in row])
    assert (tmp_path / "var" / "docket.sqlite3").read_bytes().find(key.encode()) == -1


def test_keys_create_refuses_unknown_scopes(cli_env):
    assert docket(cli_env, "db", "upgrade").returncode == 0
    made = docket(cli_env, "keys", "create", "--name", "erp", "--scopes", "submit,root")
    assert made.returncode == 2 and "root" in made.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, key: str | None = None, timeout: float = 90):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_run_serves_the_api_with_an_embedded_redis_and_a_worker_then_stops_cleanly(cli_env, tiny_model_dir, tmp_path):
    env = {**cli_env, "DOCKET_MODEL_DIR": str(tiny_model_dir), "DOCKET_MAX_NEW_TOKENS": "200"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "run.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "run", "--port", str(port)],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        def healthy():
            try:
                return http("GET", base + "/healthz", timeout=2)[0] == 200
            except OSError:
                return False

        wait_until(healthy, timeout=120, interval=0.5, what="docket run to serve /healthz")
        log.seek(0)
        key = re.search(r"(dk_[0-9a-f]{12}_[\w-]+)", log.read()).group(1)
        registry = json.loads((tmp_path / "var" / "redis.db.settings").read_text())
        redis_pid = int(open(registry["pidfile"]).read())
        assert alive(redis_pid)
        children = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
        assert len(children) == 2  # the extraction worker and the training worker
        worker_pids = [int(pid) for pid in children]

        status, body = http("POST", base + "/v1/documents?wait=60", {"doc_type": "ticket", "text": "Printer on fire, floor 3."}, key)
        assert status == 200, body
        assert body["status"] == "done" and body["result"]["model_version"].startswith("tiny-")
        ready_status, ready = http("GET", base + "/readyz")
        assert ready_status == 200, ready
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        log.seek(0)
        output = log.read()
        log.close()
    assert proc.returncode == 0, output
    wait_until(lambda: not alive(redis_pid), timeout=10, what="the embedded Redis server to stop")
    assert not os.path.exists(registry["unixsocket"])
    assert not any(alive(pid) for pid in worker_pids)
    assert "stopped" in output
