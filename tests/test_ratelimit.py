"""Rate limits per API key against the real Redis: the window, other keys, expiry, atomicity, Redis down."""

from __future__ import annotations

import logging
import threading

import pytest

from service.ratelimit import KEY_PREFIX, RateLimiter
from tests.conftest import wait_until
from tests.test_api import TICKET, assert_problem, post_text


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def limited(make_settings, sqlite_url, redis_url, make_app):
    """An app that lets each key make 3 requests a minute."""
    settings = make_settings(database_url=sqlite_url, redis_url=redis_url, rate_limit_requests=3,
                             rate_limit_window_s=60)
    return settings, make_app(settings).test_client()


def test_the_request_past_the_limit_is_429_with_retry_after_and_other_keys_go_on(limited, make_key, redis_conn):
    settings, client = limited
    erp = make_key("submit,read", client="erp", settings=settings)
    mail = make_key("read", client="mail", settings=settings)
    remaining = []
    for _ in range(3):
        resp = client.get("/v1/documents", headers=bearer(erp))
        assert resp.status_code == 200
        assert resp.headers["RateLimit-Limit"] == "3" and resp.headers["RateLimit-Policy"] == "3;w=60"
        remaining.append(resp.headers["RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]

    resp = post_text(client, bearer(erp), TICKET)  # any route counts, a POST as much as a GET
    body = assert_problem(resp, 429, "rate-limited")
    assert 1 <= int(resp.headers["Retry-After"]) <= 60 and body["retry_after"] == int(resp.headers["Retry-After"])
    assert resp.headers["RateLimit-Remaining"] == "0" and resp.headers["RateLimit-Reset"] == resp.headers["Retry-After"]
    assert "60 s" in body["detail"]
    assert client.get("/v1/documents", headers=bearer(erp)).status_code == 429  # still refused

    assert client.get("/v1/documents", headers=bearer(mail)).status_code == 200  # another key is unaffected
    assert client.get("/healthz").status_code == 200  # public routes are not counted
    assert "RateLimit-Limit" not in client.get("/healthz").headers

    stored = [k.decode() for k in redis_conn.keys(KEY_PREFIX + "*")]
    assert len(stored) == 2 and all(erp.split("_", 2)[2] not in k for k in stored)  # no secret in Redis
    assert all(0 < redis_conn.pttl(k) <= 60_000 for k in stored)  # every counter expires


def test_a_wrong_key_is_401_and_is_not_counted(limited, make_key, redis_conn):
    _, client = limited
    for _ in range(5):
        assert_problem(client.get("/v1/documents", headers=bearer("dk_000000000000_nope")), 401)
    assert redis_conn.keys(KEY_PREFIX + "*") == []


def test_a_key_passes_again_once_its_window_is_over(make_settings, sqlite_url, redis_url, make_app, make_key):
    settings = make_settings(database_url=sqlite_url, redis_url=redis_url, rate_limit_requests=1,
                             rate_limit_window_s=0.5)
    client = make_app(settings).test_client()
    key = bearer(make_key("read", settings=settings))
    assert client.get("/v1/schemas", headers=key).status_code == 200
    refused = client.get("/v1/schemas", headers=key)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    wait_until(lambda: client.get("/v1/schemas", headers=key).status_code == 200, timeout=5, interval=0.1,
               what="the next window")


def test_the_count_is_atomic_across_threads(redis_conn):
    limiter = RateLimiter(redis_conn, limit=10, window_s=60)
    windows = []

    def hit():
        for _ in range(5):
            windows.append(limiter.hit("concurrent"))

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = sorted(w.count for w in windows)
    assert counts == list(range(1, 41))  # every request got its own count, none lost or repeated
    assert sum(not w.exceeded for w in windows) == 10


def test_a_counter_left_without_expiry_gets_one(redis_conn):
    redis_conn.set(KEY_PREFIX + "stuck", 5)  # e.g. written by hand
    window = RateLimiter(redis_conn, limit=10, window_s=30).hit("stuck")
    assert window.count == 6 and 0 < redis_conn.pttl(KEY_PREFIX + "stuck") <= 30_000


def test_zero_turns_the_limit_off(make_settings, sqlite_url, redis_url, make_app, make_key, redis_conn):
    settings = make_settings(database_url=sqlite_url, redis_url=redis_url, rate_limit_requests=0)
    client = make_app(settings).test_client()
    key = bearer(make_key("read", settings=settings))
    for _ in range(3):
        resp = client.get("/v1/schemas", headers=key)
        assert resp.status_code == 200 and "RateLimit-Limit" not in resp.headers
    assert redis_conn.keys(KEY_PREFIX + "*") == []


def test_redis_down_fails_open_with_a_warning(make_settings, sqlite_url, make_app, make_key, caplog):
    settings = make_settings(database_url=sqlite_url, redis_url="redis://127.0.0.1:1/0", rate_limit_requests=1)
    client = make_app(settings).test_client()
    key = bearer(make_key("submit,read", settings=settings))
    caplog.set_level(logging.WARNING, logger="service.ratelimit")
    for _ in range(3):  # past the limit of 1: nothing is counted, nothing refused
        resp = client.get("/v1/schemas", headers=key)
        assert resp.status_code == 200 and "RateLimit-Limit" not in resp.headers
    warnings = [r for r in caplog.records if r.name == "service.ratelimit"]
    assert len(warnings) == 1 and "Redis is unavailable" in warnings[0].getMessage()  # once, not per request
    assert_problem(post_text(client, key, TICKET), 503, "service-unavailable")  # the queue's own answer, no 500


def test_the_openapi_document_names_429_on_every_keyed_route(client):
    spec = client.get("/openapi.json").get_json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path.startswith("/v1/"):
                assert "429" in op["responses"], (method, path)
                assert "Retry-After" in op["responses"]["429"]["description"]
