"""The learning loop: approvals become examples, golden hold-back, retraining runs, one at a time, failures, surfaces.

Retraining runs here are real: the rq job on the training queue, LoRA on a
tiny llama (``training.tiny.save_tiny_hf``) with the real tokenizer, merged
and exported to ONNX, calibrated, evaluated on the golden set against the
active (tiny) model, gated and registered.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis
from rq.job import Job
from sqlalchemy import func, select

from service import registry, tasks
from service.cli import main as docket
from service.db import Database
from service.doctypes import load_document_types
from service.exceptions import TrainingRunActive
from service.ingest import ingest_text
from service.models import (
    DONE,
    FAILED,
    QUEUED,
    AuditEvent,
    Document,
    TrainingExample,
    TrainingRun,
    User,
)
from service.queue import TRAINING
from service.reviews import approve, claim, is_golden
from service.training_runs import request_run
from tests.review_fixtures import add_user, found, rows_field, store_document
from training.approved import approved_target
from training.cli import follow
from training.retrain import (
    RetrainConfig,
    collect_golden,
    golden_examples,
    load_approved,
    repeats_per_example,
    served_records,
    submit_golden,
)
from training.scoring_pool import ScoringPool
from training.synth import HELD_OUT_FAMILY, generate_invoices

TINY_RUN = {"replay": 2, "validation": 2, "steps": 4, "max_new_tokens": 200, "quantize": False, "warmup_steps": 1}


pytestmark = pytest.mark.usefixtures("forget_served_models")


@pytest.fixture
def sqlite_settings(make_settings, sqlite_url, redis_url):
    return make_settings(database_url=sqlite_url, redis_url=redis_url)


@pytest.fixture
def database(sqlite_settings):
    database = Database(sqlite_settings.database_uri)
    yield database
    database.dispose()


def held_out_invoice(i: int):
    return next(iter(generate_invoices(1, 500 + i, families=[HELD_OUT_FAMILY], keep_pdf=False)))


def seed_invoice_for_review(settings, i: int, wrong_date: bool = True) -> tuple[str, dict]:
    """A held-out-family invoice the model read with the invoice date wrong (it copied the due date)."""
    ex = held_out_invoice(i)
    text, target, labels = ex.text, ex.target, ex.labels
    fields = {}
    for name, value in labels.items():
        if name == "line_items":
            fields[name] = rows_field(text, [{k: (target[name][r][k], row[k], 0.9) for k in row}
                                             for r, row in enumerate(value)])
        else:
            fields[name] = found(text, target.get(name), value, 0.95)
    if wrong_date:
        fields["invoice_date"] = found(text, target["due_date"], labels["due_date"], 0.3)
    doc_id = store_document(settings, "invoice", text.encode(), ingest_text(text), f"held-out-{i}.txt", fields)
    return doc_id, ex


def approve_as(settings, database, doc_id: str, email: str, values: dict, share: float) -> TrainingExample:
    doc_type = load_document_types(settings.schema_dir)["invoice"]
    with database.session() as session:
        user = session.scalar(select(User).where(User.email == email))
        task = claim(session, doc_id, user, minutes=15)
        attempt_id = session.get(Document, doc_id).latest_extraction.id
        return approve(session, doc_type, doc_id, user, version=task.version, attempt_id=attempt_id, values=values,
                       golden_share=share)


# --- examples ----------------------------------------------------------------


def test_an_approval_becomes_a_training_example_with_the_printed_text_as_target(sqlite_settings, database):
    add_user(sqlite_settings, "rev@example.com")
    doc_id, ex = seed_invoice_for_review(sqlite_settings, 0)
    values = dict(ex.labels)  # the reviewer corrects the invoice date
    approve_as(sqlite_settings, database, doc_id, "rev@example.com", values, share=0.0)

    with database.session() as session:
        row = session.scalar(select(TrainingExample))
        assert row.text == ex.text and row.values["invoice_date"] == ex.labels["invoice_date"]
        assert row.origins["invoice_date"] == "human" and row.origins["total"] == "model"
        assert row.approver == "rev@example.com" and not row.golden
        examples, golden = load_approved(session, load_document_types(sqlite_settings.schema_dir))
    assert golden == [] and len(examples) == 1
    target, labelled = examples[0].target, examples[0].labelled
    # The corrected date is taught as printed ("29 januari 2022"), found in the text, not as ISO.
    assert target["invoice_date"] == ex.target["invoice_date"] != ex.labels["invoice_date"]
    assert target["total"] == ex.target["total"] and target["iban"] == ex.target["iban"]
    assert target["line_items"] == ex.target["line_items"]
    assert {"invoice_date", "total", "line_items", "vendor_name"} <= labelled


def test_a_value_the_document_does_not_print_stays_out_of_the_loss(sqlite_settings, database):
    add_user(sqlite_settings, "rev@example.com")
    doc_id, ex = seed_invoice_for_review(sqlite_settings, 1)
    values = {**ex.labels, "total": 123456.78}  # nowhere in the text
    approve_as(sqlite_settings, database, doc_id, "rev@example.com", values, share=0.0)
    with database.session() as session:
        examples, _ = load_approved(session, load_document_types(sqlite_settings.schema_dir))
    assert "total" not in examples[0].labelled and "invoice_date" in examples[0].labelled


def test_an_approved_value_the_decoder_could_not_write_stays_out_of_the_loss_not_the_document(sqlite_settings):
    doc_type = load_document_types(sqlite_settings.schema_dir)["invoice"]
    ex = next(ex for i in range(2, 12) if (ex := held_out_invoice(i)).labels["iban"])  # one that prints an IBAN
    values = {**ex.labels, "iban": ex.labels["iban"][:-2]}  # a reviewer's slip: two digits short for its country
    target, labelled = approved_target(doc_type, ex.text, values)
    assert "iban" not in labelled and target["iban"] is None
    assert {"vendor_name", "total", "line_items"} <= labelled
    # what the decoder can write is taught
    target, labelled = approved_target(doc_type, ex.text, ex.labels)
    assert "iban" in labelled and "".join(target["iban"].split()) == ex.labels["iban"]


def test_an_iban_printed_in_seven_groups_is_taught_as_printed(sqlite_settings):
    doc_type = load_document_types(sqlite_settings.schema_dir)["invoice"]
    printed = "FR76 3000 6000 0112 3456 7890 189"  # 27 characters, seven groups
    text = f"Facture F-2024-17\nTotal TTC 1 234,50 EUR\nIBAN : {printed}   BIC : AGRIFRPP\n"
    target, labelled = approved_target(doc_type, text, {"iban": printed.replace(" ", ""), "total": 1234.5})
    assert target["iban"] == printed and "iban" in labelled


def test_golden_hold_back_is_stable_and_about_the_configured_share(sqlite_settings, database):
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(4000)]
    first = [is_golden(d, 0.2) for d in digests]
    assert first == [is_golden(d, 0.2) for d in digests]  # same content, same side, every time
    assert 0.18 < sum(first) / len(first) < 0.22
    assert all(is_golden(d, 0.3) for d, g in zip(digests, first) if g)  # a larger share only adds

    add_user(sqlite_settings, "rev@example.com")
    golden_doc, golden_ex, train_doc, train_ex = None, None, None, None
    for i in range(2, 40):
        ex = held_out_invoice(i)
        side = is_golden(hashlib.sha256(ex.text.encode()).hexdigest(), 0.2)
        if side and golden_doc is None:
            golden_doc, golden_ex = seed_invoice_for_review(sqlite_settings, i)
        elif not side and train_doc is None:
            train_doc, train_ex = seed_invoice_for_review(sqlite_settings, i)
        if golden_doc and train_doc:
            break
    approve_as(sqlite_settings, database, golden_doc, "rev@example.com", golden_ex.labels, share=0.2)
    approve_as(sqlite_settings, database, train_doc, "rev@example.com", train_ex.labels, share=0.2)
    with database.session() as session:
        examples, golden = load_approved(session, load_document_types(sqlite_settings.schema_dir))
    assert [g.document_id for g in golden] == [golden_doc]
    assert [e.text for e in examples] == [train_ex.text]  # the golden document is never trained on


def test_the_active_models_golden_answers_are_the_ones_it_gave_in_service(sqlite_settings, database, tiny_model_dir):
    """A golden document the active model read when it was submitted is scored from that answer, not read again."""
    doc_types = load_document_types(sqlite_settings.schema_dir)
    served_doc, served_ex = seed_invoice_for_review(sqlite_settings, 3)  # read by "tiny-test", invoice date wrong
    unread = held_out_invoice(4)
    with database.session() as session:
        rows = [TrainingExample(document_id=served_doc, doc_type="invoice", text=served_ex.text, values=served_ex.labels,
                                golden=True),
                TrainingExample(doc_type="invoice", text=unread.text, values=unread.labels, golden=True)]
        session.add_all(rows)
        session.commit()
        golden = golden_examples(rows, doc_types)
        served = served_records(session, rows, golden, "tiny-test", doc_types)
        assert served_records(session, rows, golden, "another-version", doc_types) == {"invoice": []}
    [record] = served["invoice"]
    assert record.id == f"golden-{rows[0].id}" and record.extraction.model_version == "tiny-test"
    outcomes = {o.field: o.correct for o in record.outcomes}
    assert outcomes["vendor_name"] and not outcomes["invoice_date"]  # the stored answer, wrong date and all

    with ScoringPool(sqlite_settings.model_copy(update={"max_new_tokens": 60}), workers=1) as pool:
        [pending] = submit_golden(pool, tiny_model_dir, golden, doc_types, served)
        assert [e.id for e in pending.examples] == [f"golden-{rows[1].id}"]  # only the document it never read
        [report] = collect_golden(pool, [pending], served)
    assert report.documents == 2


# --- runs --------------------------------------------------------------------


def add_examples(database, n_train: int, n_golden: int) -> None:
    with database.session() as session:
        for i in range(n_train + n_golden):
            ex = held_out_invoice(100 + i)
            session.add(TrainingExample(doc_type="invoice", text=ex.text, values=ex.labels,
                                        origins={k: "human" for k in ex.labels}, approver="rev@example.com",
                                        golden=i >= n_train))
        session.commit()


def activate_tiny(database, tiny_model_dir) -> str:
    with database.session() as session:
        registry.register(session, version="tiny-v1", path=tiny_model_dir, actor="test")
        session.commit()
        registry.promote(session, "tiny-v1", "test")
    return "tiny-v1"


def work_training_queue(settings) -> None:
    connection = Redis.from_url(settings.redis_url)
    try:
        tasks.init_runtime(settings)
        tasks.make_worker(connection, (TRAINING,)).work(burst=True, logging_level="WARNING")
    finally:
        connection.close()


def start_run(settings, database, params: dict) -> int:
    connection = Redis.from_url(settings.redis_url)
    try:
        with database.session() as session:
            return request_run(session, connection, settings, "test", params).id
    finally:
        connection.close()


def test_a_run_shows_corrections_fewer_times_as_they_grow_so_its_length_stays_put():
    views = {n: n * repeats_per_example(n, 400, 8) for n in (1, 40, 43, 80, 100, 133, 400, 1000)}
    assert views[1] == 8 and views[40] == 320 and views[43] == 344  # few: the most passes each
    assert views[80] == 400 and views[100] == 400 and views[133] == 399  # then about the budget
    assert views[400] == 400 and views[1000] == 1000  # and never fewer than one pass


def test_what_a_run_leaves_open_follows_the_device_it_trains_on():
    """On a CPU a run must fit its time: the top 20 layers, 300 views; a GPU trains every layer on 400."""
    cpu, gpu = RetrainConfig().resolved("cpu"), RetrainConfig().resolved("cuda")
    assert (cpu.train_layers, cpu.approved_views) == (20, 300)
    assert (gpu.train_layers, gpu.approved_views) == (0, 400)
    asked = RetrainConfig(train_layers=0, approved_views=400).resolved("cpu")  # what the caller says wins
    assert (asked.train_layers, asked.approved_views) == (0, 400)


def test_a_run_trains_evaluates_gates_and_registers(sqlite_settings, database, tiny_model_dir, tiny_base_dir):
    settings = sqlite_settings
    add_examples(database, n_train=3, n_golden=2)
    active = activate_tiny(database, tiny_model_dir)
    run_id = start_run(settings, database, {**TINY_RUN, "base_dir": str(tiny_base_dir)})
    work_training_queue(settings)

    with database.session() as session:
        run = session.get(TrainingRun, run_id)
        assert run.status == DONE, run.error + "\n" + run.log
        assert run.slot is None and run.started_at and run.finished_at
        assert run.base_model_version == active
        assert run.progress == {"stage": "done"}
        assert len(run.metrics["loss"]) == 4  # one point per step
        assert "3 approved examples to train on, 2 golden examples held back" in run.log
        assert "each approved example is shown 8 times" in run.log and run.metrics["train"]["repeats"] == 8
        entry = registry.get_version(session, run.output_model_version)
        gate = run.metrics["gate"]
        assert entry.parent == active and entry.training_run_id == run_id
        assert entry.sha256 == registry.artifact_sha256(Path(entry.path))
        assert entry.metrics["golden"]["invoice"]["documents"] == 2
        assert set(run.metrics["stage_minutes"]) == {"data", "train", "build", "calibrate", "evaluate"}
        assert gate["overall"]["labelled"] > 0  # both models really were scored on the golden set
        assert gate == entry.gate
        if gate["decision"] == "promote":
            assert entry.status == "active" and registry.active_version(session).version == entry.version
            assert entry.previous == active
        else:
            assert entry.status == "rejected" and registry.active_version(session).version == active
        assert gate["overall"]["candidate"] + 1e-9 >= gate["overall"]["active"] or gate["decision"] == "reject"


def test_a_run_continues_the_adapter_of_the_model_it_would_replace(sqlite_settings, database, tiny_model_dir,
                                                                     tiny_base_dir):
    """Run 1 starts a fresh adapter (the tiny model has none); once its model serves, run 2 continues run 1's,
    training only its top layer (of two): a fresh adapter learns in every layer."""
    settings = sqlite_settings
    add_examples(database, n_train=3, n_golden=1)
    activate_tiny(database, tiny_model_dir)
    params = {**TINY_RUN, "base_dir": str(tiny_base_dir), "train_layers": 1, "precision": "fp32"}
    first = start_run(settings, database, params)
    work_training_queue(settings)
    with database.session() as session:
        cold = session.get(TrainingRun, first)
        assert cold.status == DONE, cold.error
        assert "a fresh adapter, lr 0.001" in cold.log and cold.metrics["train"]["started_from"] is None
        assert cold.metrics["train"]["frozen_layers"] == 0 and "were kept as they were" not in cold.log
        entry = registry.get_version(session, cold.output_model_version)
        assert (Path(entry.path) / "adapter" / "adapter_model.safetensors").exists()  # the model keeps its adapter
        assert json.loads((Path(entry.path) / "adapter" / "train_config.json").read_text())["precision"] == "fp32"
        if entry.status != "active":
            registry.promote(session, entry.version, "test")
        cold_losses, first_version, first_path = cold.metrics["loss"], entry.version, entry.path

    second = start_run(settings, database, params)
    work_training_queue(settings)
    with database.session() as session:
        warm = session.get(TrainingRun, second)
        assert warm.status == DONE, warm.error
        assert f"continuing the adapter of {first_version}, lr 0.0003" in warm.log
        assert warm.metrics["train"]["started_from"] == str(Path(first_path) / "adapter")
        assert warm.metrics["train"]["frozen_layers"] == 1
        assert "the adapter's layers 0 to 0 were kept as they were" in warm.log
        assert registry.get_version(session, warm.output_model_version).parent == first_version
    # Same examples in the same order: a fresh LoRA starts exactly at the base model's loss, so a
    # different first loss shows the run began from run 1's weights.
    assert warm.metrics["loss"][0] != cold_losses[0]


def test_a_rejected_candidate_is_kept_with_its_comparison_and_never_served(sqlite_settings, database, tiny_model_dir,
                                                                          tiny_base_dir, capsys):
    """A gate that demands a 50-point gain on every field (margin -0.5) turns the same run into a rejection."""
    settings = sqlite_settings
    add_examples(database, n_train=2, n_golden=2)
    active = activate_tiny(database, tiny_model_dir)
    run_id = start_run(settings, database, {**TINY_RUN, "base_dir": str(tiny_base_dir), "margin": -0.5,
                                                "min_labelled": 1})
    followed: dict[str, str] = {}  # `docket train` follows the run from a thread while the job runs
    follower = threading.Thread(target=lambda: followed.update(status=follow(database, run_id)))
    follower.start()
    work_training_queue(settings)
    follower.join(timeout=30)
    assert followed["status"] == DONE
    shown = capsys.readouterr()
    assert "training:" in shown.err and "loss" in shown.err and "4/4" in shown.err  # the progress bar
    assert "gate: reject" in shown.out  # the run's log lines as they come
    with database.session() as session:
        run = session.get(TrainingRun, run_id)
        assert run.status == DONE, run.error
        entry = registry.get_version(session, run.output_model_version)
        assert entry.status == "rejected" and entry.gate["decision"] == "reject"
        assert entry.gate["reasons"] and all("more than the -50.00% allowed" in r for r in entry.gate["reasons"])
        assert entry.gate["fields"] and registry.active_version(session).version == active
    assert tasks.get_engine(settings).model_dir == tiny_model_dir.resolve()  # still serving the active model


def test_a_failed_run_leaves_the_active_model_untouched(sqlite_settings, database, tiny_model_dir, tiny_base_dir,
                                                        tmp_path):
    settings = sqlite_settings
    add_examples(database, n_train=2, n_golden=1)
    active = activate_tiny(database, tiny_model_dir)
    broken = tmp_path / "broken-base"
    shutil.copytree(tiny_base_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a tensor file")
    run_id = start_run(settings, database, {**TINY_RUN, "base_dir": str(broken)})
    work_training_queue(settings)

    with database.session() as session:
        run = session.get(TrainingRun, run_id)
        assert run.status == FAILED and run.slot is None
        assert run.error and "Traceback" in run.log
        assert registry.active_version(session).version == active
        assert [v.version for v in registry.list_versions(session)] == [active]
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action.in_(["model.promoted", "model.rolled_back"]))) == 1  # only the test's own
    assert start_run(settings, database, TINY_RUN) != run_id  # the slot is free again


def test_only_one_run_at_a_time_even_when_requests_race(make_settings, pg_url, redis_url):
    settings = make_settings(database_url=pg_url, redis_url=redis_url)
    database = Database(settings.database_uri)
    barrier = threading.Barrier(6)
    results: list[object] = []

    def ask() -> None:
        connection = Redis.from_url(redis_url)
        barrier.wait()
        try:
            with database.session() as session:
                results.append(request_run(session, connection, settings, "test", {}).id)
        except TrainingRunActive as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        ids = [r for r in results if isinstance(r, int)]
        refused = [r for r in results if isinstance(r, TrainingRunActive)]
        assert len(ids) == 1 and len(refused) == 5
        assert all(r.extra.get("run_id") in (ids[0], None) for r in refused)
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(TrainingRun)) == 1
            assert session.get(TrainingRun, ids[0]).status == QUEUED
        assert Job.fetch(f"docket-training-run-{ids[0]}", connection=Redis.from_url(redis_url)).origin == TRAINING
    finally:
        database.dispose()


def test_a_run_whose_job_was_lost_gives_the_slot_back(sqlite_settings, database):
    first = start_run(sqlite_settings, database, {})
    with pytest.raises(TrainingRunActive):
        start_run(sqlite_settings, database, {})
    connection = Redis.from_url(sqlite_settings.redis_url)
    Job.fetch(f"docket-training-run-{first}", connection=connection).delete()
    connection.close()
    with pytest.raises(TrainingRunActive):  # a run just requested may not be enqueued yet: not lost
        start_run(sqlite_settings, database, {})
    with database.session() as session:
        session.get(TrainingRun, first).created_at -= timedelta(minutes=1)
        session.commit()
    second = start_run(sqlite_settings, database, {})
    with database.session() as session:
        lost = session.get(TrainingRun, first)
        assert lost.status == FAILED and "lost" in lost.error
        assert session.get(TrainingRun, second).status == QUEUED


# --- API and CLI -------------------------------------------------------------


def test_the_api_queues_runs_one_at_a_time_and_reports_them(make_app, make_key, sqlite_settings):
    client = make_app(sqlite_settings).test_client()
    train = {"Authorization": f"Bearer {make_key('train', settings=sqlite_settings)}"}
    read = {"Authorization": f"Bearer {make_key('read', client='reader', settings=sqlite_settings)}"}
    assert client.post("/v1/training-runs", json={}, headers=read).status_code == 403
    resp = client.post("/v1/training-runs", json={"steps": 10, "train_layers": 4, "precision": "fp32"}, headers=train)
    assert resp.status_code == 202, resp.get_json()
    run = resp.get_json()
    assert run["params"] == {"steps": 10, "train_layers": 4, "precision": "fp32"}
    assert run["status"] == "queued" and run["requested_by"] == "client:test"
    again = client.post("/v1/training-runs", json={}, headers=train)
    assert again.status_code == 409
    assert again.get_json()["type"].endswith("/training-run-active") and again.get_json()["run_id"] == run["id"]
    assert client.get(resp.headers["Location"], headers=train).get_json()["id"] == run["id"]
    assert client.post("/v1/training-runs", json={"base_dir": "/etc"}, headers=train).status_code == 422
    for body in ("null", "[]", "{nope", '{"steps": true}', '{"steps": "10"}', '{"train_layers": -1}',
                 '{"precision": "fp16"}'):  # refused before the slot is looked at
        resp = client.post("/v1/training-runs", data=body, content_type="application/json", headers=train)
        assert resp.status_code == 422, body
    assert client.get(f"/v1/training-runs/{2**70}", headers=train).status_code == 404  # no overflow, no 500


def test_the_api_lists_promotes_and_rolls_back_models(make_app, make_key, sqlite_settings, database, tmp_path):
    with database.session() as session:
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            (folder / "model.onnx").write_bytes(name.encode())
            registry.register(session, version=name, path=folder, actor="test")
        session.commit()
    client = make_app(sqlite_settings).test_client()
    train = {"Authorization": f"Bearer {make_key('train', settings=sqlite_settings)}"}
    admin = {"Authorization": f"Bearer {make_key('admin', client='ops', settings=sqlite_settings)}"}
    listed = client.get("/v1/models", headers=train).get_json()
    assert listed["active"] is None and {v["version"] for v in listed["items"]} == {"a", "b"}
    assert client.post("/v1/models/a/promote", headers=train).status_code == 403  # promotion needs admin
    assert client.post("/v1/models/a/promote", headers=admin).get_json()["status"] == "active"
    assert client.post("/v1/models/b/promote", headers=admin).get_json()["previous"] == "a"
    assert client.post("/v1/models/rollback", headers=admin).get_json()["version"] == "a"
    assert client.post("/v1/models/rollback", headers=admin).status_code == 409
    assert client.post("/v1/models/zzz/promote", headers=admin).status_code == 404
    with database.session() as session:
        actors = {e.actor for e in session.scalars(select(AuditEvent).where(AuditEvent.action.like("model.%")))}
    assert "client:ops" in actors


def test_the_cli_lists_promotes_and_rolls_back(sqlite_settings, database, tmp_path, monkeypatch):
    with database.session() as session:
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            (folder / "model.onnx").write_bytes(name.encode())
            registry.register(session, version=name, path=folder, actor="test")
        session.commit()
    monkeypatch.setenv("DOCKET_DATABASE_URL", sqlite_settings.database_uri)
    from config.settings import get_settings

    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert "b is active (was the default model)" in runner.invoke(docket, ["models", "promote", "b"]).output
        assert "a is active (was b)" in runner.invoke(docket, ["models", "promote", "a"]).output
        out = runner.invoke(docket, ["models", "list"]).output
        assert "* a " in out and "  b " in out and "retired" in out
        assert "b is active again" in runner.invoke(docket, ["models", "rollback"]).output
        failed = runner.invoke(docket, ["models", "rollback"])
        assert failed.exit_code == 1 and "replaced no earlier registered version" in failed.output
    finally:
        get_settings.cache_clear()


def test_the_demonstration_runs_end_to_end_at_tiny_scale(make_settings, sqlite_url, redis_url, tiny_model_dir,
                                                         tiny_base_dir, tmp_path):
    """The full-scale benchmark's wiring (training.demo_learning), on the tiny model: numbers, not quality."""
    from training.demo_learning import DemoConfig, run_demo

    settings = make_settings(database_url=sqlite_url, redis_url=redis_url, model_dir=tiny_model_dir,
                             max_new_tokens=200, golden_share=0.25)
    cfg = DemoConfig(fresh=2, approve=4, eval_shared=1, retrain={**TINY_RUN, "base_dir": str(tiny_base_dir)})
    report = run_demo(settings, cfg, tmp_path / "demo")
    # The served model's guard, scored by the idle training worker, is what the run reads back.
    assert report["guard_warmup_minutes"] is not None
    assert any(f"{report['before']['model']}'s scores on these 1 documents read from the score cache" in line
               for line in report["run"]["log"])
    assert report["approvals"]["submitted"] == 4 and report["approvals"]["approved"] == report["approvals"]["review"] > 0
    assert report["before"]["documents"] == report["after"]["documents"] == 2
    assert report["before"]["model"].startswith("tiny-")
    assert report["run"]["status"] == DONE, report["run"]["error"]
    assert report["after"]["model"] == (report["run"]["version"] if report["run"]["decision"] == "promote"
                                        else report["before"]["model"])
    assert (tmp_path / "demo" / "report.json").exists()
