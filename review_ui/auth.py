"""Sessions for people: flask-login over :class:`service.models.User`, roles, CSRF and the cookie.

Only the session cookie authenticates here: no request loader reads an
``Authorization`` header, so an API key opens nothing in the UI (and the API
reads nothing but that header).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, abort, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect

from service.db import get_session
from service.models import User

login_manager = LoginManager()
csrf = CSRFProtect()

ENGINEERS = ("engineer", "admin")


class SessionUser(UserMixin):
    """The logged-in person as flask-login sees them: a detached copy of the row."""

    def __init__(self, user: User) -> None:
        self.id = user.id
        self.email = user.email
        self.name = user.name
        self.role = user.role

    @property
    def is_engineer(self) -> bool:
        return self.role in ENGINEERS

    def row(self) -> User:
        """The user's row in this request's database session."""
        user = get_session().get(User, self.id)
        if user is None:
            abort(401)
        return user


@login_manager.user_loader
def load_user(user_id: str) -> SessionUser | None:
    try:
        user = get_session().get(User, int(user_id))
    except ValueError:
        return None
    return SessionUser(user) if user is not None and user.active else None


def role_required(*roles: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions; ``SESSION_COOKIE_SECURE = None`` means "Secure over HTTPS"."""

    def get_cookie_secure(self, app: Flask) -> bool:
        configured = app.config.get("SESSION_COOKIE_SECURE")
        return request.is_secure if configured is None else bool(configured)


def init_auth(app: Flask, secure_cookie: bool | None) -> None:
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookie,
        SESSION_COOKIE_NAME="docket_session",
        # The UI checks CSRF itself (every unsafe request to the blueprint); the API takes bearer keys.
        WTF_CSRF_CHECK_DEFAULT=False,
        # Tied to the session, not to a clock: a reviewer's open page must not expire under them.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.session_interface = SessionInterface()
    login_manager.login_view = "review_ui.login"
    login_manager.login_message = "Log in to continue."
    login_manager.session_protection = "strong"
    login_manager.init_app(app)
    csrf.init_app(app)
