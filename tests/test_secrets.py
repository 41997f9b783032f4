"""Secrets never reach a log line or an error body: API keys, the frontier key, passwords, registered secrets.

The app's requests are captured with caplog at DEBUG (every library's records
included); a real ``docket worker`` subprocess, with the openai SDK's own debug
logging switched on, escalates a document to a loopback frontier server that
fails, and its stderr is searched the same way.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest
from pydantic import SecretStr

from service import redact
from tests.conftest import ROOT, settings_env
from tests.frontier_servers import KEY, fails, loopback, openai_server  # noqa: F401  (fixtures)
from tests.review_fixtures import PASSWORD, add_user
from tests.test_api import TICKET, assert_problem, post_text
from tests.test_review_ui import TOKEN

WRONG_PASSWORD = "hunter2-but-longer"
WEBHOOK_SECRET = "whsec_4f1c2a9e7b3d5f60"


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret leaked: {secret[:8]}…"


@pytest.fixture(autouse=True)
def forget_registered_secrets():
    """Secrets registered here are forgotten afterwards, so that later tests checking that code itself never
    logs a key (tests/test_frontier.py) are not masked by the redaction."""
    before = set(redact._secrets)
    yield
    redact._secrets.clear()
    redact._secrets.update(before)


@pytest.fixture
def app_settings(make_settings, sqlite_url, redis_url):
    return make_settings(database_url=sqlite_url, redis_url=redis_url, frontier_provider="openai",
                         frontier_model="gpt-4o-mini", frontier_api_key=SecretStr(KEY),
                         secret_key="session-signing-secret-0123456789")


def test_requests_logins_and_errors_log_no_secret(app_settings, make_app, make_key, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(app_settings)
    app.add_url_rule("/boom", "boom", lambda: (_ for _ in ()).throw(RuntimeError(f"boom with {good}")))
    client = app.test_client()
    good = make_key("submit,read", settings=app_settings)
    wrong = good[:-6] + "abcdef"
    add_user(app_settings, "rita@example.com")
    bodies = []

    bodies.append(assert_problem(client.get("/v1/documents", headers={"Authorization": f"Bearer {wrong}"}), 401))
    resp = post_text(client, {"Authorization": f"Bearer {good}"}, TICKET)
    assert resp.status_code == 202
    bodies.append(resp.text)
    token = TOKEN.search(client.get("/ui/login").text).group(1)
    resp = client.post("/ui/login", data={"email": "rita@example.com", "password": WRONG_PASSWORD, "csrf_token": token})
    assert resp.status_code == 401
    bodies.append(resp.text)
    resp = client.post("/ui/login", data={"email": "rita@example.com", "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302
    resp = client.get("/boom", headers={"Authorization": f"Bearer {good}"})
    bodies.append(assert_problem(resp, 500, "internal-error"))

    assert "unhandled error on GET /boom" in caplog.text and "RuntimeError: boom with dk_[redacted]" in caplog.text
    for text in (caplog.text, *map(str, bodies)):
        assert_clean(text, good, wrong, good.split("_", 2)[2], WRONG_PASSWORD, PASSWORD, KEY,
                     app_settings.secret_key)


def test_the_filter_redacts_what_code_might_log(app_settings, make_app, caplog):
    """What a careless line or a library would write: the secrets go, the rest of the line stays."""
    make_app(app_settings)  # installs the redaction and registers the settings' secrets
    redact.register_secret(WEBHOOK_SECRET)  # as the webhook sender does with a client's signing secret
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("some.library")
    api_key = "dk_0123456789ab_" + "S" * 43
    log.debug("request headers: %s", {"Authorization": f"Bearer {api_key}", "x-api-key": KEY, "Accept": "json"})
    log.info("Authorization: Basic dXNlcjpwYXNzd29yZA== sent to %s", "127.0.0.1")
    log.warning("signing with %s for client %s", WEBHOOK_SECRET, "erp")
    log.warning('{"authorization": "Token abc.def.ghi", "retry": 3}')
    try:
        raise ValueError(f"upstream said: bad key {KEY}")
    except ValueError:
        log.exception("frontier call failed")
    text = caplog.text
    assert_clean(text, api_key, KEY, WEBHOOK_SECRET, "dXNlcjpwYXNzd29yZA==", "abc.def.ghi")
    assert "'Authorization': 'Bearer [redacted]'" in text and "'Accept': 'json'" in text
    assert "Authorization: Basic [redacted] sent to 127.0.0.1" in text
    assert "signing with [redacted] for client erp" in text
    assert "ValueError: upstream said: bad key [redacted]" in text
    assert redact.redact("short abc and dk_") == "short abc and dk_"  # nothing that is not a secret


def test_redaction_is_installed_once(app_settings, make_app):
    make_app(app_settings)
    factory = logging.getLogRecordFactory()
    make_app(app_settings)
    redact.install()
    assert logging.getLogRecordFactory() is factory  # not wrapped again: one pass per record
    record = factory("any", logging.INFO, __file__, 1, "key %s", ("dk_abcdef012345_secret",), None)
    assert record.getMessage() == "key dk_[redacted]"


def test_a_worker_escalating_to_a_failing_frontier_logs_no_key(make_settings, sqlite_url, redis_url, tiny_model_dir,
                                                               openai_server, make_app):
    """The real worker, with the openai SDK logging at debug, talks to a loopback server that fails."""
    script, url = openai_server
    script.then(fails(500))
    settings = make_settings(database_url=sqlite_url, redis_url=redis_url, model_dir=tiny_model_dir,
                             max_new_tokens=120)
    client = make_app(settings).test_client()
    created = subprocess.run([sys.executable, "-m", "service.cli", "keys", "create", "--name", "erp",
                              "--scopes", "submit,read"], env=settings_env(settings), cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    api_key = created.stdout.strip()
    assert re.fullmatch(r"dk_[0-9a-f]{12}_\S+", api_key)  # printed once, on stdout only
    assert_clean(created.stderr, api_key)
    doc = post_text(client, {"Authorization": f"Bearer {api_key}"}, TICKET).get_json()

    env = settings_env(settings) | {
        "DOCKET_FRONTIER_PROVIDER": "openai", "DOCKET_FRONTIER_MODEL": "gpt-4o-mini",
        "DOCKET_FRONTIER_BASE_URL": url, "DOCKET_FRONTIER_API_KEY": KEY, "DOCKET_FRONTIER_MAX_RETRIES": "0",
        "OPENAI_LOG": "debug",
    }
    worker = subprocess.run([sys.executable, "-m", "service.cli", "worker", "--burst"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=240)
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert script.requests and script.headers[0]["Authorization"] == f"Bearer {KEY}"  # the key went out, to the server
    assert "openai._base_client" in worker.stderr and "HTTP Response: POST 500" in worker.stderr  # SDK debug log on
    assert_clean(worker.stderr + worker.stdout, KEY, api_key)

    done = client.get(f"/v1/documents/{doc['id']}", headers={"Authorization": f"Bearer {api_key}"}).get_json()
    assert done["status"] == "done" and done["route"] == "review"
    assert any(r["code"] == "frontier_failed" for r in done["route_reasons"])
    assert_clean(str(done), KEY)
