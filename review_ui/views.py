"""Reviewers' pages: log in, the queue, the review page (htmx) and a document's history.

Every unsafe request to the blueprint must carry the CSRF token (a hidden
field, or the ``X-CSRFToken`` header htmx sends from ``hx-headers``). htmx
requests get partials; the same URLs answer plain requests with whole pages
or redirects, so nothing depends on JavaScript to be reachable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError

from config.settings import Settings
from review_ui import engineering
from review_ui.auth import SessionUser, csrf
from review_ui.forms import display, field_views, parse_values
from review_ui.highlight import evidence_spans, runs
from service import reviews
from service.db import get_session
from service.doctypes import DocumentType
from service.exceptions import DocketError, NotFound, ReviewConflict
from service.models import DONE, OPEN, Document, ReviewTask, utcnow
from service.routing import REVIEW
from service.storage import FileStore
from service.users import authenticate_user

bp = Blueprint("review_ui", __name__, url_prefix="/ui", template_folder="templates", static_folder="static")
bp.register_blueprint(engineering.bp)

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
PUBLIC = ("review_ui.login", "review_ui.static")
MAX_SKIPPED = 50
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")


def settings() -> Settings:
    return current_app.extensions["docket.settings"]


def doc_types() -> dict[str, DocumentType]:
    return current_app.extensions["docket.doc_types"]


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


# --- every request ------------------------------------------------------------------


@bp.before_request
def guard() -> Response | None:
    if request.method in UNSAFE:
        csrf.protect()
    if request.endpoint in PUBLIC or current_user.is_authenticated:
        return None
    if is_htmx():
        resp = make_response("", 401)
        resp.headers["HX-Redirect"] = url_for("review_ui.login")
        return resp
    return redirect(url_for("review_ui.login", next=request.full_path if request.method == "GET" else None))


@bp.after_request
def security_headers(resp: Response) -> Response:
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    if resp.mimetype == "text/html":
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


@bp.app_template_filter("value")
def value_filter(value: Any) -> str:
    return display(value)


@bp.app_template_filter("age")
def age_filter(created: datetime) -> str:
    seconds = int((utcnow() - created).total_seconds())
    if seconds < 3600:
        return f"{max(seconds // 60, 0)} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    return {"reason_label": reviews.reason_label}


def message(text: str, status: int, kind: str = "error") -> Response:
    """A message for the page's message area: swapped there by htmx, or a page of its own."""
    if is_htmx():
        resp = make_response(render_template("_message.html", text=text, kind=kind), status)
        resp.headers["HX-Retarget"] = "#review-messages"
        resp.headers["HX-Reswap"] = "innerHTML"
        return resp
    return make_response(render_template("error.html", text=text, status=status), status)


@bp.errorhandler(CSRFError)
def csrf_failed(exc: CSRFError) -> Response:
    return message("This form was not sent from an open Docket page (its security token is missing or "
                   "expired). Reload the page and try again; nothing was saved.", 400)


@bp.errorhandler(DocketError)
def docket_error(exc: DocketError) -> Response:
    return message(exc.detail, exc.status)


@bp.errorhandler(403)
def forbidden(_exc: Exception) -> Response:
    return message("Your role does not give you access to this page.", 403)


@bp.errorhandler(404)
def not_found(_exc: Exception) -> Response:
    return message("There is no such page or document.", 404)


# --- logging in ---------------------------------------------------------------------


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("review_ui.queue")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    error = None
    if request.method == "POST":
        user = authenticate_user(get_session(), request.form.get("email", ""), request.form.get("password", ""))
        if user is not None:
            session.clear()
            login_user(SessionUser(user))
            return redirect(safe_next(request.form.get("next")))
        error = "That e-mail and password do not match an active account."
    return render_template("login.html", error=error, next=request.values.get("next", "")), 401 if error else 200


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    session.clear()
    return redirect(url_for("review_ui.login"))


@bp.get("/")
def index() -> Response:
    return redirect(url_for("review_ui.queue"))


# --- the queue ----------------------------------------------------------------------


@bp.get("/queue")
def queue() -> str:
    args = request.args
    session.pop("skipped", None)  # back at the queue: skipped documents come round again
    sort = args.get("sort") if args.get("sort") in reviews.SORTS else "age"
    claim = args.get("claim") if args.get("claim") in reviews.CLAIM_FILTERS else "all"
    current = reviews.list_queue(
        get_session(), current_user.row(), doc_type=args.get("doc_type") or None,
        reason=args.get("reason") or None, claim=claim, sort=sort, threshold=settings().default_threshold,
    )
    return render_template("queue.html", queue=current, filters={
        "doc_type": args.get("doc_type", ""), "reason": args.get("reason", ""), "claim": claim, "sort": sort,
    }, doc_types=sorted(doc_types()), reason_codes=sorted(set(reviews.REASON_LABELS) | set(current.by_reason)),
        now=utcnow(), threshold=settings().default_threshold)


@bp.post("/documents/<document_id>/claim")
def claim(document_id: str) -> Response:
    try:
        reviews.claim(get_session(), document_id, current_user.row(), settings().review_claim_minutes)
    except ReviewConflict as exc:
        flash(exc.detail, "error")
        return redirect(url_for("review_ui.queue"), 303)
    return redirect(url_for("review_ui.review", document_id=document_id), 303)


@bp.post("/bulk-approve")
def bulk_approve() -> Response:
    """Approve, as extracted, the selected documents that only need a glance."""
    cfg = settings()
    approved, refused = reviews.bulk_approve(
        get_session(), doc_types(), request.form.getlist("document_id"), current_user.row(),
        threshold=cfg.default_threshold, claim_minutes=cfg.review_claim_minutes, golden_share=cfg.golden_share,
    )
    if approved:
        flash(f"Approved {len(approved)} document{'s' if len(approved) != 1 else ''} as extracted.", "ok")
    for document_id, why in refused.items():
        flash(f"Not approved {document_id}: {why}", "error")
    if not approved and not refused:
        flash("Select the documents to approve first.", "error")
    return redirect(url_for("review_ui.queue"), 303)


@bp.post("/next")
def next_document() -> Response:
    """Claim the oldest free document and open it (or say the queue is empty)."""
    return load_next(set(session.get("skipped", [])))


def load_next(exclude: set[str], note: str | None = None) -> Response:
    db = get_session()
    user = current_user.row()
    for _ in range(5):  # another reviewer may win a race for the same document
        document_id = reviews.next_document_id(db, user, exclude)
        if document_id is None:
            break
        try:
            reviews.claim(db, document_id, user, settings().review_claim_minutes)
        except ReviewConflict:
            exclude = exclude | {document_id}
            continue
        url = url_for("review_ui.review", document_id=document_id)
        if not is_htmx():
            if note:
                flash(note, "ok")
            return redirect(url, 303)
        resp = make_response(render_workspace(document_id, note=note))
        resp.headers["HX-Push-Url"] = url
        return resp
    if not is_htmx():
        if note:
            flash(note, "ok")
        return redirect(url_for("review_ui.queue"), 303)
    resp = make_response(render_template("_queue_done.html", note=note))
    resp.headers["HX-Push-Url"] = url_for("review_ui.queue")
    return resp


# --- the review page ----------------------------------------------------------------


def review_context(document_id: str) -> dict[str, Any]:
    db = get_session()
    doc = db.get(Document, document_id)
    if doc is None:
        raise NotFound(f"No document {document_id}.")
    task = db.get(ReviewTask, document_id)
    doc_type = doc_types().get(doc.doc_type)
    if doc_type is None:
        raise NotFound(f"No schema for document type {doc.doc_type!r}.")
    attempt = doc.latest_extraction
    threshold = settings().default_threshold
    views = field_views(doc_type, attempt.fields if attempt else {}, attempt.validation if attempt else [],
                        doc.route_reasons or [], reviews.candidates(doc), threshold)
    now = utcnow()
    mine = reviews.claim_active(task, now) and task.claimed_by_id == current_user.id
    # A claim of mine that ran out with nobody else taking it still lets me save.
    mine = mine or bool(task and task.claimed_by_id == current_user.id and task.state == OPEN)
    holder = task.claimed_by if task and reviews.claim_active(task, now) and not mine else None
    awaiting = doc.route == REVIEW and doc.status == DONE and (task is None or task.state == OPEN)
    return {
        "doc": doc, "task": task, "doc_type": doc_type, "attempt": attempt, "views": views,
        "runs": runs(doc.text or "", evidence_spans(views)), "editable": awaiting and mine,
        "awaiting": awaiting, "holder": holder, "version": task.version if task else 0,
        "is_pdf": doc.media_type == "application/pdf", "threshold": threshold,
    }


def render_workspace(document_id: str, note: str | None = None) -> str:
    return render_template("_review.html", note=note, **review_context(document_id))


@bp.get("/documents/<document_id>")
def review(document_id: str) -> str:
    return render_template("review.html", **review_context(document_id))


@bp.get("/documents/<document_id>/file")
def original_file(document_id: str) -> Response:
    """The stored original, inline; anything but a PDF as sandboxed plain text."""
    doc = get_session().get(Document, document_id)
    if doc is None:
        raise NotFound(f"No document {document_id}.")
    store = FileStore(settings().files_dir)
    data = store.get(doc.content_sha256)
    is_pdf = doc.media_type == "application/pdf"
    resp = make_response(data)
    resp.mimetype = "application/pdf" if is_pdf else "text/plain"
    if not is_pdf:
        resp.charset = "utf-8"
        resp.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    resp.headers["Content-Disposition"] = "inline"
    resp.headers["Cache-Control"] = "private, max-age=300"
    return resp


def decision_args() -> tuple[int, int | None]:
    try:
        version = int(request.form.get("version", ""))
        attempt_raw = request.form.get("attempt_id", "")
        attempt_id = int(attempt_raw) if attempt_raw else None
    except ValueError:
        abort(400)
    return version, attempt_id


@bp.post("/documents/<document_id>/approve")
def approve(document_id: str) -> Response:
    db = get_session()
    doc = db.get(Document, document_id)
    if doc is None or doc.doc_type not in doc_types():
        raise NotFound(f"No document {document_id}.")
    doc_type = doc_types()[doc.doc_type]
    values, errors = parse_values(doc_type, request.form)
    if errors:
        text = "Not saved. Fix these fields first: " + "; ".join(f"{k}: {v}" for k, v in errors.items()) + "."
        return message(text, 422)
    version, attempt_id = decision_args()
    example = reviews.approve(db, doc_type, document_id, current_user.row(), version=version,
                              attempt_id=attempt_id, values=values, golden_share=settings().golden_share)
    changed = sum(1 for origin in example.origins.values() if origin == "human")
    note = (f"Approved {doc.filename or doc.id}: {changed} field{'s' if changed != 1 else ''} corrected; "
            f"training example #{example.id}{' (golden)' if example.golden else ''} saved.")
    return load_next(set(session.get("skipped", [])) | {document_id}, note)


@bp.post("/documents/<document_id>/reject")
def reject(document_id: str) -> Response:
    version, attempt_id = decision_args()
    reviews.reject(get_session(), document_id, current_user.row(), version=version, attempt_id=attempt_id,
                   reason=request.form.get("reason", ""))
    return load_next(set(session.get("skipped", [])) | {document_id}, f"Rejected {document_id}.")


@bp.post("/documents/<document_id>/skip")
def skip(document_id: str) -> Response:
    reviews.release(get_session(), document_id, current_user.row())
    skipped = [d for d in session.get("skipped", []) if d != document_id][-(MAX_SKIPPED - 1):] + [document_id]
    session["skipped"] = skipped
    return load_next(set(skipped), f"Skipped {document_id}; it stays in the queue.")


@bp.get("/documents/<document_id>/history")
def history(document_id: str) -> str:
    db = get_session()
    doc = db.get(Document, document_id)
    if doc is None:
        raise NotFound(f"No document {document_id}.")
    return render_template("history.html", doc=doc, entries=reviews.history(db, doc),
                           task=db.get(ReviewTask, doc.id))
