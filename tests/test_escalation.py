"""Escalation policy: routing for every combination of confidence, rules and frontier outcome;
the merge; thresholds that reach the target precision. Frontier calls go over HTTP to a loopback server."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pybreaker
import pytest
from pydantic import SecretStr

from service.doctypes import DocumentType
from service.escalation import (
    BUDGET_EXHAUSTED,
    FRONTIER_AGREED,
    FRONTIER_DISAGREEMENT,
    FRONTIER_FAILED,
    agreement_confidence,
    decide_after_escalation,
    escalate,
    merge,
    values_agree,
)
from service.extract.result import Extraction, FieldResult
from service.routing import REVIEW, STRAIGHT_THROUGH, choose_field_thresholds, choose_thresholds, decide, thresholds_for
from service.validate import apply_rule_failures, validate
from tests.frontier_servers import (  # noqa: F401  (fixtures)
    fails,
    loopback,
    openai_answers,
    openai_client,
    openai_server,
)

RECEIPT = DocumentType.from_schema("receipt", {
    "type": "object",
    "properties": {
        "vendor": {"type": "string"},
        "date": {"type": "string", "format": "date"},
        "reference": {"type": ["string", "null"]},
        "subtotal": {"type": ["number", "null"]},
        "tax": {"type": ["number", "null"]},
        "total": {"type": "number"},
    },
    "required": ["vendor", "date", "reference", "subtotal", "tax", "total"],
    "additionalProperties": False,
    "x-docket-rules": [{"name": "subtotal_plus_tax_is_total", "kind": "sum", "terms": ["subtotal", "tax"],
                        "equals": "total"}],
})
GOOD = {"vendor": "Corner Shop", "date": "2026-03-14", "reference": "R-1001", "subtotal": 10.0, "tax": 2.0,
        "total": 12.0}
THRESHOLD = 0.9
TEXT = "Corner Shop  14/03/2026  R-1001  Subtotal 10.00  VAT 2.00  Total 12.00"


def extraction(values: dict, confidence: float | dict = 0.97) -> Extraction:
    conf = confidence if isinstance(confidence, dict) else {}
    return Extraction("receipt", {
        name: FieldResult(value, raw=str(value), confidence=conf.get(name, confidence if not conf else 0.97))
        for name, value in values.items()
    }, "test-model")


def model_stage(values: dict, confidence):
    """What the job does before escalation: validate, penalise failed rules, decide."""
    ext = extraction(values, confidence)
    failures = validate(RECEIPT, ext.values())
    apply_rule_failures(ext, failures, 0.5)
    return ext, failures, decide(RECEIPT, ext, failures, default_threshold=THRESHOLD)


# --- the merge -----------------------------------------------------------------


def test_values_agree_after_normalisation_both_ways():
    spec = RECEIPT.field
    assert values_agree(spec("total"), 12.0, 12.004)
    assert not values_agree(spec("total"), 12.0, 12.5)
    assert values_agree(spec("vendor"), "Corner  Shop", "corner shop")
    assert values_agree(spec("reference"), None, None)
    assert not values_agree(spec("reference"), None, "R-1001")
    assert not values_agree(spec("reference"), "R-1001", None)
    assert values_agree(spec("date"), "2026-03-14", "2026-03-14")


def test_agreement_confidence_is_a_noisy_or():
    assert agreement_confidence(0.5, 0.9) == pytest.approx(0.95)
    assert agreement_confidence(0.0, 0.9) == pytest.approx(0.9)
    assert agreement_confidence(float("nan"), 0.9) == pytest.approx(0.9)
    assert agreement_confidence(0.99, 0.9) > 0.99


def test_merge_keeps_model_values_and_both_candidates():
    ext = extraction(GOOD, {"vendor": 0.4, "total": 0.6})
    ext.fields["vendor"].evidence = None
    theirs = {**GOOD, "total": 21.0, "vendor": "CORNER SHOP"}
    merged = merge(RECEIPT, ext, theirs, frontier_confidence=0.9)

    assert merged.disagreed == ["total"]
    assert set(merged.agreed) == set(GOOD) - {"total"}
    vendor = merged.extraction.fields["vendor"]
    assert vendor.source == "frontier" and vendor.confidence == pytest.approx(1 - 0.6 * 0.1)
    assert vendor.value == "Corner Shop"  # the model's reading (and evidence) stays
    total = merged.extraction.fields["total"]
    assert total.value == 12.0 and total.source == "model" and FRONTIER_DISAGREEMENT in total.problems
    assert merged.candidates["total"] == [
        {"source": "model", "value": 12.0, "confidence": 0.6},
        {"source": "frontier", "value": 21.0},
    ]
    stored = merged.fields_dict()
    assert stored["total"]["candidates"][1]["value"] == 21.0 and stored["vendor"]["source"] == "frontier"
    # The input extraction is left alone.
    assert ext.fields["vendor"].source == "model" and ext.fields["total"].problems == []


def test_merge_fills_fields_the_model_left_out():
    ext = extraction({k: v for k, v in GOOD.items() if k != "reference"})
    merged = merge(RECEIPT, ext, GOOD)
    assert "reference" in merged.disagreed and merged.extraction.fields["reference"].value is None


def test_agreeing_on_a_missing_required_value_does_not_settle_it():
    values = {**GOOD, "date": None}
    ext, failures, decision = model_stage(values, 0.97)
    assert [r["code"] for r in decision.reasons] == ["missing_required"]
    final = decide_after_escalation(RECEIPT, merge(RECEIPT, ext, values), failures, default_threshold=THRESHOLD)
    assert final.route == REVIEW and final.escalated
    assert [r["code"] for r in final.reasons] == ["missing_required"]


# --- the decision for each combination ----------------------------------------

CONFIDENCE = {"high": 0.97, "low": {"vendor": 0.97, "date": 0.97, "reference": 0.5, "subtotal": 0.97, "tax": 0.97,
                                    "total": 0.97}}
RULES = {"pass": GOOD, "fail": {**GOOD, "total": 13.0}}  # 10 + 2 != 13
FRONTIER = ("none", "agree", "disagree", "budget_exhausted", "invalid_json", "server_error")


def expected(confidence: str, rules: str, frontier: str) -> tuple[str, set[str], bool]:
    """(route, reason codes, whether a request went out) — the policy, written out case by case."""
    if confidence == "high" and rules == "pass":
        return STRAIGHT_THROUGH, set(), False
    model_reasons = ({"low_confidence"} if confidence == "low" else set()) | (
        {"failed_rule", "low_confidence"} if rules == "fail" else set())
    if frontier == "none":
        return REVIEW, model_reasons, False
    if frontier == "budget_exhausted":
        return REVIEW, model_reasons | {BUDGET_EXHAUSTED}, False
    if frontier in ("invalid_json", "server_error"):
        return REVIEW, model_reasons | {FRONTIER_FAILED}, True
    if frontier == "agree":
        # Agreement settles low confidence; a failed rule is in the document itself.
        return (STRAIGHT_THROUGH, {FRONTIER_AGREED}, True) if rules == "pass" else (
            REVIEW, {"failed_rule", FRONTIER_AGREED}, True)
    # The frontier differs on one field the model was sure of when rules pass ("reference"); that field
    # stays low where it was low, and fields a failed rule penalised are settled by agreement.
    return REVIEW, {FRONTIER_DISAGREEMENT} | ({"low_confidence"} if confidence == "low" else set()) | (
        {"failed_rule", FRONTIER_AGREED} if rules == "fail" else set()), True


@pytest.mark.parametrize("confidence,rules,frontier", list(itertools.product(CONFIDENCE, RULES, FRONTIER)))
def test_routing_for_each_combination(openai_server, confidence, rules, frontier):
    script, url = openai_server
    values = RULES[rules]
    theirs = {**values, "reference": "R-9999"} if frontier == "disagree" else values
    script.then({"invalid_json": openai_answers("{not json"), "server_error": fails(503)}.get(
        frontier, openai_answers(theirs)))
    client = None if frontier == "none" else openai_client(url)
    ext, failures, decision = model_stage(values, CONFIDENCE[confidence])

    outcome = escalate(
        RECEIPT, ext, TEXT, decision, client,
        spent_usd=5.0 if frontier == "budget_exhausted" else 0.0, budget_usd=5.0,
        failures=failures, default_threshold=THRESHOLD, revalidate=lambda v: validate(RECEIPT, v),
    )

    route, codes, called = expected(confidence, rules, frontier)
    assert outcome.decision.route == route
    assert {r["code"] for r in outcome.decision.reasons} == codes
    assert bool(script.requests) == called == outcome.decision.escalated == outcome.called
    if frontier == "disagree" and called:
        (disagreement,) = [r for r in outcome.decision.reasons if r["code"] == FRONTIER_DISAGREEMENT]
        assert disagreement["field"] == "reference"
        assert [c["value"] for c in disagreement["candidates"]] == ["R-1001", "R-9999"]
    if called:
        assert outcome.input_tokens > 0 if frontier != "server_error" else outcome.cost_usd == 0.0
    if frontier == "agree" and rules == "pass" and confidence == "low":
        settled = outcome.extraction.fields["reference"]
        assert settled.source == "frontier" and settled.confidence > 0.5


def test_unreadable_documents_are_not_escalated(openai_server):
    script, url = openai_server
    script.then(openai_answers(GOOD))
    ext = extraction(GOOD)
    decision = decide(RECEIPT, ext, has_text_layer=False)
    outcome = escalate(RECEIPT, ext, "", decision, openai_client(url), budget_usd=10.0)
    assert outcome.decision == decision and not script.requests


def test_an_open_breaker_routes_to_review_without_calling(openai_server):
    script, url = openai_server
    script.then(fails(500))
    client = openai_client(url, breaker=pybreaker.CircuitBreaker(fail_max=1, throw_new_error_on_trip=False))
    ext, failures, decision = model_stage(GOOD, CONFIDENCE["low"])
    first = escalate(RECEIPT, ext, TEXT, decision, client, budget_usd=10.0, failures=failures)
    second = escalate(RECEIPT, ext, TEXT, decision, client, budget_usd=10.0, failures=failures)
    assert first.called and first.decision.reasons[-1]["error"] == "unavailable"
    assert not second.called and not second.decision.escalated
    assert second.decision.route == REVIEW and second.decision.reasons[-1] == {
        "code": FRONTIER_FAILED, "error": "circuit_open", "message": second.error.detail}
    assert len(script.requests) == 1


def test_the_disagreeing_value_that_satisfies_the_rules_is_still_reviewed(openai_server):
    script, url = openai_server
    script.then(openai_answers(GOOD))  # the frontier reads 12.00 where the model read 13.00
    ext, failures, decision = model_stage(RULES["fail"], 0.97)
    outcome = escalate(RECEIPT, ext, TEXT, decision, openai_client(url), budget_usd=1.0, failures=failures,
                       default_threshold=THRESHOLD, revalidate=lambda v: validate(RECEIPT, v))
    assert outcome.decision.route == REVIEW
    (disagreement,) = [r for r in outcome.decision.reasons if r["code"] == FRONTIER_DISAGREEMENT]
    assert disagreement["field"] == "total" and disagreement["candidates"][1]["value"] == 12.0


# --- thresholds ------------------------------------------------------------------


def calibrated_answers(rng: np.random.Generator, n: int, low: float = 0.85) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic validation split: calibrated confidences, each answer right with that probability."""
    conf = rng.uniform(low, 1.0, n)
    return conf, rng.random(n) < conf


@pytest.mark.parametrize("target", [0.95, 0.99])
def test_threshold_reaches_the_target_precision_and_is_the_lowest_that_does(target):
    rng = np.random.default_rng(7)
    conf, ok = calibrated_answers(rng, 40_000)
    threshold = choose_thresholds(conf, ok, target)
    accepted = conf >= threshold
    assert ok[accepted].mean() >= target
    # Every lower threshold misses the target on the same split.
    for lower in np.unique(conf[conf < threshold])[-200:]:
        assert ok[conf >= lower].mean() < target
    # And it generalises: on a fresh split from the same distribution it holds up to sampling noise.
    conf2, ok2 = calibrated_answers(rng, 40_000)
    assert ok2[conf2 >= threshold].mean() >= target - 0.005


def test_thresholds_per_field_route_documents_at_the_target_precision():
    rng = np.random.default_rng(11)
    fields = [spec.name for spec in RECEIPT.fields]
    lows = dict(zip(fields, (0.6, 0.8, 0.9, 0.7, 0.85, 0.95)))

    def draw(name: str, n: int, easy: np.ndarray) -> np.ndarray:
        # Half the documents are clean prints the model reads with high confidence.
        return np.where(easy, rng.uniform(0.985, 1.0, n), rng.uniform(lows[name], 1.0, n))

    validation = {}
    for name in fields:
        conf = draw(name, 20_000, rng.random(20_000) < 0.5)
        validation[name] = (conf, rng.random(conf.size) < conf)
    thresholds = choose_field_thresholds(validation, 0.99)
    assert set(thresholds) == set(fields) and all(0.9 < t <= 1.0 for t in thresholds.values())

    # Fresh documents: fields that go straight through are right at the target rate.
    right = total = routed = 0
    for easy in rng.random(3000) < 0.5:
        conf = {name: float(draw(name, 1, np.array([easy]))[0]) for name in fields}
        if decide(RECEIPT, extraction(GOOD, conf), thresholds=thresholds).route == STRAIGHT_THROUGH:
            routed += 1
            total += len(fields)
            right += sum(rng.random() < conf[name] for name in fields)
    assert routed > 300
    assert right / total >= 0.985


def test_thresholds_come_from_the_model_metadata():
    assert thresholds_for({"thresholds": {"total": 0.93, "vendor": 1.01}}, "receipt") == {"total": 0.93, "vendor": 1.01}
    assert thresholds_for({"thresholds": {"receipt": {"total": 0.8}, "invoice": {"total": 0.9}}}, "receipt") == {
        "total": 0.8}
    assert thresholds_for({}, "receipt") == {} and thresholds_for(None, "receipt") == {}
    ext = extraction(GOOD, {**{name: 0.99 for name in GOOD}, "total": 0.92})
    assert decide(RECEIPT, ext, thresholds=thresholds_for({"thresholds": {"total": 0.93}}, "receipt")).route == REVIEW
    assert decide(RECEIPT, ext, thresholds=thresholds_for({"thresholds": {"total": 0.9}}, "receipt")).route == (
        STRAIGHT_THROUGH)


def test_escalate_leaves_the_model_extraction_alone(openai_server):
    script, url = openai_server
    script.then(openai_answers(GOOD))
    ext, failures, decision = model_stage(GOOD, CONFIDENCE["low"])
    before = copy.deepcopy(ext)
    escalate(RECEIPT, ext, TEXT, decision, openai_client(url), budget_usd=1.0, failures=failures)
    assert ext == before


# --- the job: escalation persisted -------------------------------------------------


INVOICE_VALUES = {
    "vendor_name": "Azure Interior", "vendor_address": "4557 De Silva St, Fremont, CA 94538", "vendor_tax_id": None,
    "buyer_name": "Deco Addict", "invoice_number": "INV/2023/00003", "invoice_date": "2023-03-31",
    "due_date": "2023-04-30", "purchase_order": None, "currency": "USD", "subtotal": 4000.0, "tax": 600.0,
    "total": 4600.0, "amount_due": 4600.0, "iban": None,
    "line_items": [{"description": "Desk", "quantity": 2.0, "unit_price": 1500.0, "amount": 3000.0},
                   {"description": "Chair", "quantity": 4.0, "unit_price": 250.0, "amount": 1000.0}],
}


@pytest.fixture
def job(make_settings, database_url, openai_server):
    """A runtime whose frontier is the loopback OpenAI server, a stored invoice, and its unsure extraction."""
    from service import tasks  # noqa: PLC0415
    from service.models import Document  # noqa: PLC0415
    from tests.frontier_servers import KEY  # noqa: PLC0415

    script, url = openai_server
    settings = make_settings(database_url=database_url, frontier_provider="openai", frontier_model="gpt-4o-mini",
                             frontier_base_url=url, frontier_api_key=KEY, frontier_max_retries=0,
                             frontier_monthly_budget_usd=1.0)
    tasks._FRONTIERS.clear()
    runtime = tasks.Runtime.from_settings(settings)
    with runtime.db.session() as session:
        doc = Document(doc_type="invoice", media_type="text/plain", content_sha256="0" * 64, size_bytes=10,
                       text="INVOICE INV/2023/00003 Azure Interior Total 4,600.00", status="processing")
        session.add(doc)
        session.commit()
        doc_id = doc.id
    yield runtime, doc_id, script
    tasks._FRONTIERS.clear()
    runtime.db.dispose()


def run_escalation(runtime, doc_id, low_field="buyer_name"):
    from service import tasks  # noqa: PLC0415
    from service.models import AuditEvent, Document, ExtractionAttempt  # noqa: PLC0415

    doc_type = runtime.doc_types["invoice"]
    ext = Extraction("invoice", {name: FieldResult(v, raw=str(v), confidence=0.99) for name, v in INVOICE_VALUES.items()},
                     "tiny")
    ext.fields[low_field].confidence = 0.3
    failures = validate(doc_type, ext.values())
    decision = decide(doc_type, ext, failures, default_threshold=0.9)
    assert decision.route == REVIEW and decision.escalatable
    with runtime.db.session() as session:
        doc = session.get(Document, doc_id)
        final = tasks.escalate_document(session, runtime, doc, doc_type, ext, failures, decision, {})
        session.commit()
        attempts = list(session.query(ExtractionAttempt).filter_by(document_id=doc_id, engine="frontier"))
        events = [e.action for e in session.query(AuditEvent).filter_by(document_id=doc_id)]
    return final, attempts, events


def test_job_agreement_goes_straight_through_and_records_the_call(job):
    runtime, doc_id, script = job
    script.then(openai_answers(INVOICE_VALUES, prompt_tokens=3000, completion_tokens=400))
    final, attempts, events = run_escalation(runtime, doc_id)
    assert final.route == STRAIGHT_THROUGH and final.escalated
    assert final.reasons == ({"code": FRONTIER_AGREED, "accepted": ["buyer_name"]},)
    (attempt,) = attempts
    assert (attempt.prompt_tokens, attempt.output_tokens) == (3000, 400)
    assert attempt.cost_usd == pytest.approx((3000 * 0.15 + 400 * 0.60) / 1e6)  # gpt-4o-mini from config/prices.json
    assert attempt.model_version == "openai:gpt-4o-mini"
    assert attempt.fields["buyer_name"]["source"] == "frontier" and attempt.fields["buyer_name"]["confidence"] > 0.9
    assert attempt.fields["buyer_name"]["candidates"][1] == {"source": "frontier", "value": "Deco Addict"}
    assert "extraction.escalated" in events


def test_job_disagreement_keeps_both_candidates_for_review(job):
    runtime, doc_id, script = job
    script.then(openai_answers({**INVOICE_VALUES, "buyer_name": "Gemini Furniture"}))
    final, attempts, _ = run_escalation(runtime, doc_id)
    assert final.route == REVIEW and final.escalated
    (disagreement,) = [r for r in final.reasons if r["code"] == FRONTIER_DISAGREEMENT]
    assert [c["value"] for c in disagreement["candidates"]] == ["Deco Addict", "Gemini Furniture"]
    assert "frontier_disagreement" in attempts[0].fields["buyer_name"]["problems"]


def test_job_frontier_failure_goes_to_review_and_still_counts_the_cost(job):
    runtime, doc_id, script = job
    script.then(openai_answers('{"vendor_name": ', prompt_tokens=3000, completion_tokens=10))
    final, attempts, _ = run_escalation(runtime, doc_id)
    assert final.route == REVIEW
    assert final.reasons[-1]["code"] == FRONTIER_FAILED and final.reasons[-1]["error"] == "invalid_answer"
    (attempt,) = attempts
    assert attempt.cost_usd > 0 and attempt.warnings[0].startswith("frontier invalid_answer")
    assert attempt.fields["total"]["value"] == 4600.0  # the model's fields, unchanged


def test_job_over_budget_does_not_call_the_frontier(job):
    from service.models import ExtractionAttempt  # noqa: PLC0415

    runtime, doc_id, script = job
    script.then(openai_answers(INVOICE_VALUES))
    with runtime.db.session() as session:  # this month's spend already reached the 1.00 USD cap
        session.add(ExtractionAttempt(document_id=doc_id, engine="frontier", cost_usd=0.6))
        session.add(ExtractionAttempt(document_id=doc_id, engine="frontier", cost_usd=0.4))
        session.commit()
    final, attempts, events = run_escalation(runtime, doc_id)
    assert final.route == REVIEW and not final.escalated
    assert final.reasons[-1] == {"code": BUDGET_EXHAUSTED, "spent_usd": 1.0, "budget_usd": 1.0}
    assert not script.requests and len(attempts) == 2
    assert "extraction.not_escalated" in events


def test_job_without_a_frontier_sends_uncertain_documents_to_review(job):
    runtime, doc_id, script = job
    runtime.settings = runtime.settings.model_copy(update={"frontier_provider": "none"})
    script.then(openai_answers(INVOICE_VALUES))
    final, attempts, _ = run_escalation(runtime, doc_id)
    assert final.route == REVIEW and not final.escalated and not attempts and not script.requests
    assert [r["code"] for r in final.reasons] == ["low_confidence"]


def test_process_document_with_the_tiny_model_escalates_values_the_model_could_not_finish(model_settings,
                                                                                          openai_server):
    """The whole job on the tiny real model (random weights): its values run into the value limit and are
    closed early with zero confidence. That is the model's failure, not the document's, so the job asks the
    frontier, records its attempt, and sends the disagreements to review with both candidates."""
    from service import tasks  # noqa: PLC0415
    from service.models import DONE, Document, ExtractionAttempt  # noqa: PLC0415
    from tests.frontier_servers import KEY  # noqa: PLC0415

    script, url = openai_server
    script.then(openai_answers(INVOICE_VALUES))
    settings = model_settings.model_copy(update={
        "frontier_provider": "openai", "frontier_model": "gpt-4o-mini", "frontier_base_url": url,
        "frontier_api_key": SecretStr(KEY), "frontier_max_retries": 0, "max_new_tokens": 200})
    tasks._FRONTIERS.clear()
    runtime = tasks.init_runtime(settings)
    try:
        with runtime.db.session() as session:
            doc = Document(doc_type="invoice", media_type="text/plain", content_sha256="1" * 64, size_bytes=60,
                           text="INVOICE INV/2023/00003\nAzure Interior\nDeco Addict\n31/03/2023\nTotal 4,600.00")
            session.add(doc)
            session.commit()
            doc_id = doc.id
        result = tasks.process_document(doc_id)
        with runtime.db.session() as session:
            doc = session.get(Document, doc_id)
            engines = [a.engine for a in session.query(ExtractionAttempt).filter_by(document_id=doc_id)]
        codes = {r["code"] for r in doc.route_reasons}
        assert doc.status == DONE and result["route"] == doc.route == REVIEW
        assert "truncated" not in codes and FRONTIER_DISAGREEMENT in codes
        assert engines == ["model", "frontier"] and script.requests
    finally:
        tasks._FRONTIERS.clear()
