"""Accounts and API tokens. A token is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.clock import CLOCK
from certflow.engine.errors import Conflict, Forbidden
from certflow.engine.facade import Actor
from certflow.store.models import User

DEMO_USERS: list[dict[str, Any]] = [
    {"username": "office", "display_name": "Olga Office", "groups": ["office"], "is_staff": True},
    {"username": "coordinator", "display_name": "Cor Coordinator", "groups": ["coordinator", "office"], "is_staff": True},
    {"username": "mentor", "display_name": "Mila Mentor", "groups": ["mentor"]},
    {"username": "assessor", "display_name": "Arie Assessor", "groups": ["assessor"]},
    {"username": "committee", "display_name": "Kees Commissie", "groups": ["committee"]},
    {"username": "certifier", "display_name": "Cato Certifier", "groups": ["certifier"], "is_staff": True},
    {"username": "candidate", "display_name": "Cas Kandidaat", "groups": ["candidate"],
     "address": {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}},
]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, username: str, display_name: str, groups: list[str], *,
                email: str | None = None, is_staff: bool = False, language: str = "nl",
                address: dict[str, str] | None = None, token: str | None = None) -> str:
    """Create a user; returns the API token (the only time it is visible)."""
    if session.get(User, username) is not None:
        raise Conflict(f"user {username!r} exists")
    token = token or secrets.token_urlsafe(24)
    session.add(User(
        username=username, display_name=display_name, email=email or f"{username}@example.org",
        language=language, token_hash=token_hash(token), is_staff=is_staff, groups=groups,
        address=address or {}, created_at=CLOCK.now(),
    ))
    session.flush()
    return token


def authenticate(session: Session, token: str | None) -> Actor:
    if not token:
        raise Forbidden("missing API token (Authorization: Bearer <token>)")
    user = session.scalar(select(User).where(User.token_hash == token_hash(token)))
    if user is None:
        raise Forbidden("unknown API token")
    return actor_of(user)


def actor_of(user: User) -> Actor:
    return Actor(user.username, tuple(user.groups or ()), user.is_staff)


def ensure_demo_users(session: Session) -> dict[str, str]:
    """Create the demo accounts that don't exist yet; returns {username: token} for new ones."""
    created = {}
    for spec in DEMO_USERS:
        if session.get(User, spec["username"]) is None:
            created[spec["username"]] = create_user(session, **spec)
    return created
