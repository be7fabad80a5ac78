"""The demo's people, made by ``certflow run`` on first start so there is someone to sign in as.

Each demo account gets an API token and a password. Both are random and shown once, when the
accounts are made (``certflow user NAME --password`` sets a new password later); nothing
guessable is left behind on a machine that is reachable from elsewhere.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from certflow.services import access, accounts
from certflow.store.models import User

DEMO_USERS: list[dict[str, Any]] = [
    {"username": "office", "display_name": "Olga Office", "roles": ["office"]},
    {"username": "coordinator", "display_name": "Cor Coordinator",
     "roles": ["coordinator", "office"]},
    # The second escalation level (processes/*/escalation.json: second_level_to).
    {"username": "office_manager", "display_name": "Mira Manager",
     "roles": ["office_manager", "office"]},
    {"username": "mentor", "display_name": "Mila Mentor", "roles": ["mentor"]},
    {"username": "assessor", "display_name": "Arie Assessor", "roles": ["assessor"]},
    {"username": "committee", "display_name": "Kees Commissie", "roles": ["committee"]},
    {"username": "certifier", "display_name": "Cato Certifier", "roles": ["certifier"]},
    {"username": "admin", "display_name": "Ada Admin", "roles": ["admin", "process_owner"]},
    {"username": "candidate", "display_name": "Cas Kandidaat", "roles": ["candidate"],
     "address": {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht",
                 "country": "NL"}},
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    email: str
    token: str


def ensure_demo_users(session: Session, now: datetime) -> tuple[list[DemoLogin], str | None]:
    """Create the demo accounts that don't exist yet. Returns their logins and the password
    they share (None when every demo account existed already)."""
    created: list[DemoLogin] = []
    password = secrets.token_urlsafe(9)
    password_hash = access.hash_password(password)
    for spec in DEMO_USERS:
        if session.get(User, spec["username"]) is not None:
            continue
        account = accounts.create(session, spec["username"], spec["display_name"], spec["roles"],
                                  address=spec.get("address"), password_hash=password_hash,
                                  now=now)
        token, _ = access.create_token(session, account.username, "demo", now=now)
        created.append(DemoLogin(account.username, account.email, token))
    return created, password if created else None
