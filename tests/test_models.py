"""The ORM models on SQLite and PostgreSQL: relations, constraints, timestamps."""

from datetime import timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.auth import authenticate, create_api_key, require_scope
from service.db import Database
from service.exceptions import Forbidden, InvalidRequest, Unauthorized
from service.models import ApiClient, AuditEvent, Document, ExtractionAttempt, Review, User


@pytest.fixture
def database(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


def make_document(session, client=None, **kw) -> Document:
    values = dict(doc_type="invoice", media_type="text/plain", content_sha256="a" * 64, size_bytes=3, text="abc")
    values.update(kw)
    doc = Document(client=client, **values)
    session.add(doc)
    session.flush()
    return doc


def test_document_with_attempt_review_and_audit(database):
    with database.session() as s:
        user = User(email="rev@example.com", password_hash="x")
        doc = make_document(s, page_starts=[0, 10], route_reasons=[{"code": "low_confidence", "field": "total"}])
        attempt = ExtractionAttempt(
            document=doc,
            engine="model",
            model_version="tiny-1",
            fields={"total": {"value": "10.00", "confidence": 0.5, "evidence": {"start": 1, "end": 3, "page": 1}}},
            latency_ms=12.5,
            prompt_tokens=100,
            output_tokens=20,
        )
        s.add_all([user, attempt])
        s.flush()
        s.add(Review(document=doc, attempt_id=attempt.id, user_id=user.id, field="total", before="10.00", after="100.00"))
        s.add(AuditEvent(actor="user:rev@example.com", action="review.saved", document_id=doc.id, data={"n": 1}))
        s.commit()
        doc_id = doc.id

    with database.session() as s:
        doc = s.get(Document, doc_id)
        assert doc.latest_extraction.fields["total"]["evidence"]["page"] == 1
        assert doc.reviews[0].before == "10.00" and doc.reviews[0].after == "100.00"
        assert doc.route_reasons == [{"code": "low_confidence", "field": "total"}]
        assert doc.page_starts == [0, 10]
        assert doc.created_at.tzinfo is not None
        assert doc.created_at.utcoffset() == timezone.utc.utcoffset(None)


def test_idempotency_key_is_unique_per_client(database):
    with database.session() as s:
        erp, mail = ApiClient(name="erp"), ApiClient(name="mail")
        s.add_all([erp, mail])
        make_document(s, client=erp, idempotency_key="k1")
        make_document(s, client=mail, idempotency_key="k1")  # another client may reuse it
        s.commit()
        make_document(s, client=erp, idempotency_key="k2")
        s.commit()
        with pytest.raises(IntegrityError):
            make_document(s, client=erp, idempotency_key="k1")
            s.commit()


def test_deleting_a_document_deletes_its_attempts(database):
    with database.session() as s:
        doc = make_document(s)
        s.add(ExtractionAttempt(document=doc, engine="model"))
        s.commit()
        s.delete(doc)
        s.commit()
        assert s.scalars(select(ExtractionAttempt)).all() == []


def test_api_keys_are_stored_hashed_and_scoped(database):
    with database.session() as s:
        key, row = create_api_key(s, "erp", "submit, read")
        assert key not in (row.key_hash, row.prefix) and len(row.key_hash) == 64
        assert row.scopes == ["read", "submit"]
        found = authenticate(s, f"Bearer {key}")
        assert found.id == row.id
        require_scope(found, "submit")
        with pytest.raises(Forbidden):
            require_scope(found, "train")
        with pytest.raises(Unauthorized):
            authenticate(s, f"Bearer {key[:-1]}x")
        with pytest.raises(Unauthorized):
            authenticate(s, None)
        with pytest.raises(InvalidRequest):
            create_api_key(s, "erp", "submit,root")
