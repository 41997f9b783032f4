"""Wire the review UI into an app: sessions, CSRF, templates' helpers and the blueprint."""

from __future__ import annotations

from flask import Flask

from review_ui.auth import init_auth
from review_ui.views import bp


def init_app(app: Flask) -> None:
    settings = app.extensions["docket.settings"]
    init_auth(app, settings.session_cookie_secure)
    app.register_blueprint(bp)
