"""The Flask app factory: database, file store, document types, Redis, the API and its OpenAPI document, the review UI."""

from __future__ import annotations

from flask import Flask

import review_ui
from config.settings import Settings, get_settings
from service import api, db, guards, observability, ratelimit, redact
from service.doctypes import load_document_types
from service.queue import connect_redis
from service.storage import FileStore
from service.webhooks import events as webhook_events


def create_app(settings: Settings | None = None) -> Flask:
    """The app for *settings* (default: read from the environment)."""
    settings = settings or get_settings()
    redact.install(settings)
    app = Flask(__name__, static_folder=None)  # no /static route: the review UI serves its own files
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # Multipart framing adds a little to the file itself.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 64 * 1024,
    )
    app.json.sort_keys = False
    app.extensions["docket.settings"] = settings
    app.extensions["docket.files"] = FileStore(settings.files_dir)
    app.extensions["docket.doc_types"] = load_document_types(settings.schema_dir)
    app.extensions["docket.redis"] = connect_redis(settings)
    database = db.Database(settings.database_uri)
    webhook_events.attach(database, settings, app.extensions["docket.redis"])
    db.init_app(app, database)
    ratelimit.init_app(app, settings)

    observability.init_app(app)  # first, so its hooks see every request
    api.register_error_handlers(app)
    guards.init_app(app)
    app.register_blueprint(api.bp)
    api.spec.register(app)
    review_ui.init_app(app)
    return app
