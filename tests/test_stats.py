"""Routing statistics and the frontier bill: pure aggregation, the database queries behind it and the budget."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from service.frontier import Price
from service.stats import (
    DocumentRow,
    format_stats,
    frontier_only_cost,
    load_rows,
    month_start,
    monthly_frontier_spend,
    next_month_start,
    period_key,
    summarize,
    token_ratios,
)

PRICE = Price(2.0, 8.0)
NOV = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
OCT = datetime(2026, 10, 31, 23, 59, tzinfo=timezone.utc)


def row(route: str, when: datetime = NOV, doc_type: str = "invoice", frontier: tuple[int, int, float] | None = None,
        model: tuple[int, int] = (1000, 100)) -> DocumentRow:
    f_in, f_out, cost = frontier or (0, 0, 0.0)
    return DocumentRow(doc_type, when, route, model[0], model[1], 1 if frontier else 0, f_in, f_out, cost)


def test_rates_spend_and_cost_per_thousand():
    rows = [
        row("straight_through"),
        row("straight_through"),
        row("straight_through", frontier=(2000, 300, 0.0064)),  # escalated, settled by agreement
        row("review", frontier=(2000, 300, 0.0064)),  # escalated, still unsure
        row("review"),  # no frontier (budget, or none configured)
    ]
    stats = summarize(rows, "month", PRICE)
    total = stats["totals"]
    assert (total["documents"], total["straight_through"], total["escalated"], total["review"]) == (5, 3, 2, 2)
    assert total["straight_through_rate"] == 0.6 and total["escalation_rate"] == 0.4 and total["review_rate"] == 0.4
    assert total["frontier_calls"] == 2
    assert total["frontier_spend_usd"] == pytest.approx(0.0128)
    assert total["cost_per_1000_usd"] == pytest.approx(0.0128 / 5 * 1000)

    # Frontier-only: escalated documents at their real cost, the others from model tokens scaled by the
    # frontier/model token ratio seen on escalated ones (2000/1000 in, 300/100 out).
    assert token_ratios(rows) == (2.0, 3.0)
    per_other = PRICE.cost(2000, 300)
    assert total["frontier_only_cost_usd"] == pytest.approx(2 * PRICE.cost(2000, 300) + 3 * per_other)
    assert total["frontier_only_cost_per_1000_usd"] == pytest.approx(5 * per_other / 5 * 1000)
    assert total["savings_rate"] == pytest.approx(1 - 0.0128 / (5 * per_other), abs=1e-4)
    assert stats["estimate"]["frontier_tokens_per_model_token"] == {"input": 2.0, "output": 3.0}


def test_groups_by_period_and_document_type_newest_first():
    rows = [row("straight_through", OCT), row("review", NOV), row("review", NOV, "ticket"),
            row("straight_through", NOV + timedelta(days=1))]
    monthly = summarize(rows, "month", PRICE)
    assert [(g["period"], g["doc_type"], g["documents"]) for g in monthly["groups"]] == [
        ("2026-11", "invoice", 2), ("2026-11", "ticket", 1), ("2026-10", "invoice", 1)]
    daily = summarize(rows, "day", PRICE)
    assert [g["period"] for g in daily["groups"]] == ["2026-11-21", "2026-11-20", "2026-11-20", "2026-10-31"]
    assert daily["totals"]["documents"] == 4
    with pytest.raises(ValueError):
        period_key(NOV, "week")


def test_without_a_frontier_price_or_documents():
    stats = summarize([row("review")], "month", None)
    assert stats["totals"]["frontier_only_cost_usd"] is None and stats["totals"]["savings_rate"] is None
    assert stats["estimate"]["price_per_mtok_usd"] is None
    empty = summarize([], "day", PRICE)["totals"]
    assert empty["documents"] == 0 and empty["straight_through_rate"] is None and empty["cost_per_1000_usd"] is None
    # No escalations yet: token counts are taken one for one.
    assert frontier_only_cost(row("review"), PRICE, token_ratios([row("review")])) == pytest.approx(PRICE.cost(1000, 100))


def test_format_stats_is_a_table():
    text = format_stats(summarize([row("straight_through"), row("review", frontier=(10, 10, 0.5))], "month", PRICE))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["period", "type", "docs"]
    assert lines[1].startswith("2026-11") and "50.0%" in lines[1]
    assert lines[-1].startswith("all")


def test_month_bounds():
    assert month_start(NOV) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert next_month_start(NOV) == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert next_month_start(datetime(2026, 12, 31, 23, tzinfo=timezone.utc)) == datetime(2027, 1, 1, tzinfo=timezone.utc)


# --- the database ---------------------------------------------------------------


def add_document(session, route: str | None, when: datetime, doc_type: str = "invoice",
                 frontier_costs: tuple[float, ...] = (), model_tokens: tuple[int, int] = (1000, 100),
                 client_id: int | None = None) -> None:
    from service.models import Document, ExtractionAttempt  # noqa: PLC0415

    doc = Document(doc_type=doc_type, media_type="text/plain", content_sha256="0" * 64, size_bytes=10,
                   route=route, status="done" if route else "queued", created_at=when, client_id=client_id)
    session.add(doc)
    session.flush()
    session.add(ExtractionAttempt(document_id=doc.id, engine="model", prompt_tokens=model_tokens[0],
                                  output_tokens=model_tokens[1], created_at=when))
    for cost in frontier_costs:
        session.add(ExtractionAttempt(document_id=doc.id, engine="frontier", prompt_tokens=2000, output_tokens=200,
                                      cost_usd=cost, created_at=when))
    session.commit()


def test_rows_and_monthly_spend_from_the_database(database_url):
    from service.db import Database  # noqa: PLC0415

    database = Database(database_url)
    try:
        with database.session() as session:
            add_document(session, "straight_through", NOV)
            add_document(session, "review", NOV, frontier_costs=(0.25, 0.5))  # a retried job called twice
            add_document(session, "straight_through", NOV, "ticket", frontier_costs=(0.125,))
            add_document(session, "review", OCT, frontier_costs=(4.0,))
            add_document(session, None, NOV)  # not routed yet

            assert monthly_frontier_spend(session, NOV) == pytest.approx(0.875)
            assert monthly_frontier_spend(session, OCT) == pytest.approx(4.0)

            rows = load_rows(session)
            assert len(rows) == 4
            reviewed = next(r for r in rows if r.route == "review" and r.created_at.month == 11)
            assert (reviewed.frontier_calls, reviewed.frontier_input_tokens, reviewed.model_input_tokens) == (2, 4000, 1000)
            assert reviewed.frontier_cost_usd == pytest.approx(0.75)
            assert reviewed.created_at.tzinfo is not None

            november = load_rows(session, since=month_start(NOV))
            assert sorted(r.doc_type for r in november) == ["invoice", "invoice", "ticket"]
            assert [r.route for r in load_rows(session, doc_type="ticket")] == ["straight_through"]
            assert len(load_rows(session, until=month_start(NOV))) == 1

            stats = summarize(november, "month", PRICE)
            assert stats["totals"]["escalation_rate"] == pytest.approx(2 / 3, abs=1e-4)
            assert stats["totals"]["frontier_spend_usd"] == pytest.approx(0.875)
    finally:
        database.dispose()


# --- the API and the CLI -----------------------------------------------------------


@pytest.fixture
def stored(settings, make_key):
    """Keys for two clients and an admin, and documents of both clients in November 2026."""
    from service.db import Database  # noqa: PLC0415
    from service.models import ApiClient  # noqa: PLC0415

    keys = {"acme": make_key("read", client="acme"), "globex": make_key("read", client="globex"),
            "admin": make_key("read,admin", client="ops")}
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            ids = {c.name: c.id for c in session.query(ApiClient)}
            add_document(session, "straight_through", NOV, client_id=ids["acme"])
            add_document(session, "review", NOV, frontier_costs=(0.5,), client_id=ids["acme"])
            add_document(session, "review", NOV, "ticket", client_id=ids["globex"])
    finally:
        database.dispose()
    return keys


def test_stats_endpoint_per_client_and_for_admins(client, stored):
    query = {"period": "month", "since": "2026-11-01T00:00:00Z"}
    own = client.get("/v1/stats", query_string=query, headers={"Authorization": f"Bearer {stored['acme']}"})
    assert own.status_code == 200, own.get_json()
    body = own.get_json()
    assert body["totals"]["documents"] == 2 and body["totals"]["escalation_rate"] == 0.5
    assert body["totals"]["frontier_spend_usd"] == pytest.approx(0.5)
    assert [(g["period"], g["doc_type"]) for g in body["groups"]] == [("2026-11", "invoice")]
    assert "budget" not in body  # service-wide figures are for admins

    admin = client.get("/v1/stats", query_string={**query, "period": "day"},
                       headers={"Authorization": f"Bearer {stored['admin']}"}).get_json()
    assert admin["totals"]["documents"] == 3 and admin["groups"][0]["period"] == "2026-11-20"
    assert admin["budget"]["budget_usd"] == 50.0 and admin["budget"]["exhausted"] is False

    typed = client.get("/v1/stats", query_string={**query, "doc_type": "ticket"},
                       headers={"Authorization": f"Bearer {stored['admin']}"}).get_json()
    assert typed["totals"]["documents"] == 1 and typed["totals"]["review_rate"] == 1.0

    bad = client.get("/v1/stats", query_string={"period": "week"}, headers={"Authorization": f"Bearer {stored['acme']}"})
    assert bad.status_code == 422 and bad.get_json()["type"].endswith("invalid-request")
    assert client.get("/v1/stats").status_code == 401
    assert "/v1/stats" in client.get("/openapi.json").get_json()["paths"]


def test_metrics_endpoint_counts_routes_and_frontier_calls(client, stored):
    from service import metrics  # noqa: PLC0415

    metrics.record_decision("invoice", "review", escalated=True)
    metrics.record_frontier_call("openai", "gpt-4o-mini", "ok", 1000, 100, 0.25)
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {stored['acme']}"})
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    text = resp.get_data(as_text=True)
    assert 'docket_documents_routed_total{doc_type="invoice",escalated="true",route="review"}' in text
    assert 'docket_frontier_spend_usd_total{model="gpt-4o-mini",provider="openai"}' in text
    assert client.get("/metrics").status_code == 401


def test_docket_stats_command(settings, stored, monkeypatch):
    from click.testing import CliRunner  # noqa: PLC0415

    from config.settings import get_settings  # noqa: PLC0415
    from service.cli import main  # noqa: PLC0415

    monkeypatch.setenv("DOCKET_DATABASE_URL", settings.database_uri)
    monkeypatch.setenv("DOCKET_VAR_DIR", str(settings.var_dir))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        table = runner.invoke(main, ["stats", "--since", "2026-11-01"])
        assert table.exit_code == 0, table.output
        assert "2026-11" in table.output and "frontier budget" in table.output
        data = runner.invoke(main, ["stats", "--period", "day", "--since", "2026-11-01", "--type", "invoice", "--json"])
        assert data.exit_code == 0, data.output
        report = json.loads(data.output)
        assert report["totals"]["documents"] == 2 and report["budget"]["spent_usd"] >= 0
    finally:
        get_settings.cache_clear()
