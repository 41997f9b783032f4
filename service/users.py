"""People who use the review UI: creating them and checking their passwords (argon2id).

API keys (``service.auth``) and these accounts are separate worlds: a key
never opens a UI session and a session never authorises an API call.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.exceptions import InvalidRequest
from service.models import ROLES, User

MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a wrong e-mail costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password anyone has")


def normalize_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidRequest(f"Not a valid e-mail address: {exc}.") from None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(session: Session, email: str, password: str, role: str = "reviewer", name: str = "") -> User:
    """Add a user with a hashed password; the e-mail is the login and must be new."""
    if role not in ROLES:
        raise InvalidRequest(f"Role must be one of {', '.join(ROLES)}; got {role!r}.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"Passwords have at least {MIN_PASSWORD_LENGTH} characters.")
    address = normalize_email(email)
    if session.scalar(select(func.count()).select_from(User).where(User.email == address)):
        raise InvalidRequest(f"A user {address} already exists.")
    user = User(email=address, name=name, password_hash=hash_password(password), role=role)
    session.add(user)
    session.commit()
    return user


def authenticate_user(session: Session, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None; upgrades an outdated hash."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.commit()
    return user
