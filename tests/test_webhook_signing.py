"""Webhook signatures and the SSRF guard: pure functions, no network (literal addresses resolve locally)."""

import hashlib
import hmac
import ipaddress

import pytest

from service.exceptions import InvalidRequest, WebhookRefused
from service.webhooks.guard import check_url, refusal, resolve_target
from service.webhooks.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOLERANCE_S,
    sign,
    signed_headers,
    verify_signature,
)

SECRET = "whsec_test-secret"
BODY = b'{"id":"abc","type":"document.completed","data":{"id":"d1"}}'
NOW = 1_764_670_000


def headers(timestamp: int = NOW, secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    return signed_headers(secret, "abc", "document.completed", body, timestamp)


def test_a_signature_is_hmac_sha256_over_timestamp_dot_body():
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"v1={expected}"
    assert headers()[SIGNATURE_HEADER] == f"v1={expected}"
    assert headers()[TIMESTAMP_HEADER] == str(NOW)


def test_verify_accepts_a_fresh_signature_with_any_header_case():
    assert verify_signature(SECRET, headers(), BODY, now=NOW + 10)
    lowered = {k.lower(): v for k, v in headers().items()}
    assert verify_signature(SECRET, lowered, BODY, now=NOW - 10)


@pytest.mark.parametrize("case", ["wrong secret", "tampered body", "tampered timestamp", "no signature",
                                  "no timestamp", "garbage timestamp", "other scheme"])
def test_verify_rejects_a_bad_signature(case):
    h = headers()
    body = BODY
    if case == "wrong secret":
        h = headers(secret="whsec_other")
    elif case == "tampered body":
        body = BODY.replace(b"d1", b"d2")
    elif case == "tampered timestamp":
        h[TIMESTAMP_HEADER] = str(NOW + 1)
    elif case == "no signature":
        del h[SIGNATURE_HEADER]
    elif case == "no timestamp":
        del h[TIMESTAMP_HEADER]
    elif case == "garbage timestamp":
        h[TIMESTAMP_HEADER] = "-12"
    elif case == "other scheme":
        h[SIGNATURE_HEADER] = h[SIGNATURE_HEADER].replace("v1=", "v0=")
    assert not verify_signature(SECRET, h, body, now=NOW)


def test_verify_refuses_timestamps_outside_the_replay_window():
    assert verify_signature(SECRET, headers(), BODY, now=NOW + TOLERANCE_S)
    assert not verify_signature(SECRET, headers(), BODY, now=NOW + TOLERANCE_S + 1)  # replayed later
    assert not verify_signature(SECRET, headers(), BODY, now=NOW - TOLERANCE_S - 1)  # from the future
    assert not verify_signature(SECRET, headers(), BODY, now=NOW + 61, tolerance=60)


def test_verify_accepts_any_of_several_signatures_while_a_secret_rotates():
    h = headers()
    h[SIGNATURE_HEADER] = f"{sign('whsec_old', NOW, BODY)} {h[SIGNATURE_HEADER]}"
    assert verify_signature(SECRET, h, BODY, now=NOW)
    assert verify_signature("whsec_old", h, BODY, now=NOW)
    assert not verify_signature("whsec_third", h, BODY, now=NOW)


# --- the SSRF guard ----------------------------------------------------------


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.7", "private"),
    ("172.16.0.1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("fc00::1", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("100.64.0.1", "not a public"),
])
def test_private_addresses_are_refused_unless_allowed(address, kind):
    assert kind in refusal(ipaddress.ip_address(address), allow_private=False)
    assert refusal(ipaddress.ip_address(address), allow_private=True) is None


@pytest.mark.parametrize("address", ["224.0.0.1", "ff02::1", "0.0.0.0", "::", "240.0.0.1"])
def test_multicast_unspecified_and_reserved_are_always_refused(address):
    assert refusal(ipaddress.ip_address(address), allow_private=True)


def test_public_addresses_pass():
    assert refusal(ipaddress.ip_address("93.184.216.34"), allow_private=False) is None
    assert refusal(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"), allow_private=False) is None


def test_resolve_target_pins_the_checked_address():
    target = resolve_target("https://93.184.216.34:8443/hooks/docket?x=1", allow_private=False)
    assert (target.scheme, target.addresses, target.port, target.path) == ("https", ("93.184.216.34",), 8443,
                                                                          "/hooks/docket?x=1")
    assert target.host_header == "93.184.216.34:8443"
    assert resolve_target("http://[::1]/", allow_private=True).host_header == "[::1]"


def test_resolve_target_refuses_loopback_names_and_other_schemes():
    with pytest.raises(WebhookRefused, match="loopback"):
        resolve_target("http://localhost:9/hook", allow_private=False)
    with pytest.raises(WebhookRefused, match="169.254.169.254, a link-local address"):
        resolve_target("http://169.254.169.254/latest/meta-data/", allow_private=False)
    for url in ("ftp://93.184.216.34/x", "file:///etc/passwd", "gopher://93.184.216.34/"):
        with pytest.raises(WebhookRefused, match="http:// or https://"):
            resolve_target(url, allow_private=True)


@pytest.mark.parametrize("url, message", [
    ("", "1 to 2000"), ("erp.example.com/hook", "http:// or https://"), ("ftp://erp.example.com/", "http://"),
    ("https:///path", "names a host"), ("https://user:pw@erp.example.com/", "no user name or password"),
    ("https://erp.example.com:99999/", "port"), ("https://erp.example.com/" + "x" * 2000, "1 to 2000"),
])
def test_check_url_explains_what_is_wrong(url, message):
    with pytest.raises(InvalidRequest, match=message):
        check_url(url)


def test_check_url_accepts_a_plain_https_url():
    assert check_url("  https://erp.example.com/docket  ") == "https://erp.example.com/docket"
