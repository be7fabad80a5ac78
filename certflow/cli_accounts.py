"""``certflow user`` and ``certflow token``: accounts and API tokens from the command line.

``certflow user NAME ...`` creates the account when it does not exist and otherwise changes
only what is given, so the office can complete a person's data (an address, so they can be
invoiced) with the same command that made them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import click

from certflow.errors import CertflowError


def _session() -> Any:
    from certflow.store.db import session_scope

    return session_scope()


def _fail(exc: CertflowError) -> click.ClickException:
    fields = exc.details.get("fields")
    detail = f" ({'; '.join(f'{k}: {v}' for k, v in fields.items())})" if isinstance(fields, dict) else ""
    return click.ClickException(exc.message + detail)


@click.command()
@click.argument("username")
@click.option("--name", "display_name", help="Full name (needed to create).")
@click.option("--group", "--role", "roles", multiple=True,
              help="Role(s): repeat or separate with commas (mentor,assessor). Replaces the roles.")
@click.option("--email")
@click.option("--staff/--no-staff", default=None, help="Default: staff when a role is a staff role.")
@click.option("--street")
@click.option("--postal-code")
@click.option("--city")
@click.option("--country", help="Two letters, default NL.")
@click.option("--birth-date", help="YYYY-MM-DD.")
@click.option("--language", type=click.Choice(["nl", "en"]))
@click.option("--password", is_flag=True, help="Set a password (asked for, or generated).")
@click.option("--generate-password", is_flag=True, help="With --password: make and print one.")
@click.option("--active/--inactive", default=None, help="Deactivate: no sign-in, no API use.")
def user(username: str, display_name: str | None, roles: tuple[str, ...], email: str | None,
         staff: bool | None, street: str | None, postal_code: str | None, city: str | None,
         country: str | None, birth_date: str | None, language: str | None, password: bool,
         generate_password: bool, active: bool | None) -> None:
    """Create user USERNAME (printing an API token, shown once) or change their data."""
    from certflow.clock import CLOCK
    from certflow.services import access, accounts

    given = {"display_name": display_name, "email": email, "street": street,
             "postal_code": postal_code, "city": city, "country": country,
             "date_of_birth": birth_date, "language": language}
    given = {k: v for k, v in given.items() if v is not None}
    try:
        with _session() as session:
            exists = _exists(session, username)
            if exists and any(k in given for k in accounts.ADDRESS_FIELDS):
                # Changing one line of an address keeps the others.
                current = accounts.get(session, username).address
                given.update({k: v for k, v in current.items() if k not in given})
            clean, errors = accounts.clean_person(given, today=date.today(), require_address=False,
                                                  require_birth_date=False)
            if errors:
                raise click.ClickException("; ".join(f"{k}: {v}" for k, v in errors.items()))
            if not exists:
                if not display_name or not roles:
                    raise click.ClickException("a new user needs --name and --group")
                accounts.create(session, username, clean.pop("display_name"), roles,
                                email=clean.pop("email", None), is_staff=staff, now=CLOCK.now(),
                                **clean)
                token, _ = access.create_token(session, username, "cli")
                click.echo(token)
            else:
                accounts.update(session, username, clean)
                if roles or staff is not None:
                    accounts.set_roles(session, username,
                                       roles or accounts.get(session, username).roles, staff)
            if active is not None:
                accounts.set_active(session, username, active)
                if not active:
                    access.expire_sessions(session, username)
            if password:
                _set_password(session, username, generate_password)
            if exists:
                click.echo(_describe(accounts.get(session, username)))
    except CertflowError as exc:
        raise _fail(exc) from exc


def _exists(session: Any, username: str) -> bool:
    from certflow.errors import NotFound
    from certflow.services import accounts

    try:
        accounts.get(session, username)
    except NotFound:
        return False
    return True


def _set_password(session: Any, username: str, generate: bool) -> None:
    import secrets

    from certflow.services import access

    if generate:
        new = secrets.token_urlsafe(12)
        click.echo(f"password: {new}")
    else:
        new = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    access.set_password(session, username, new)


def _describe(account: Any) -> str:
    address = ", ".join(v for v in account.address.values() if v) or "-"
    return (f"{account.username}: {account.display_name} <{account.email}> "
            f"roles={','.join(account.roles)} staff={account.is_staff} "
            f"language={account.language} born={account.date_of_birth or '-'} address={address} "
            f"active={account.is_active}")


@click.group()
def token() -> None:
    """API tokens for scripts: create (shown once), list, revoke."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="", help="What the token is for.")
@click.option("--days", default=90, show_default=True, type=click.IntRange(min=1),
              help="Valid this many days.")
def token_create(username: str, name: str, days: int) -> None:
    """Create an API token for USERNAME and print it (shown once)."""
    from certflow.services import access

    try:
        with _session() as session:
            secret, info = access.create_token(session, username, name, timedelta(days=days))
    except CertflowError as exc:
        raise _fail(exc) from exc
    click.echo(secret)
    click.echo(f"token #{info.id}, valid until {info.expires_at:%Y-%m-%d %H:%M} UTC", err=True)


@token.command("list")
@click.option("--user", "username", help="Only this user's tokens.")
def token_list(username: str | None) -> None:
    """List API tokens (never the tokens themselves)."""
    from certflow.services import access

    with _session() as session:
        now = access.wall_now()
        for t in access.list_tokens(session, username):
            expires = f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never"
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            click.echo(f"#{t.id:<4} {t.username:<14} {t.status(now):<8} expires {expires:<10} "
                       f"last used {used:<16} {t.name}")


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke API token TOKEN_ID (see `certflow token list`): it stops working at once."""
    from certflow.services import access

    try:
        with _session() as session:
            info = access.revoke_token(session, token_id)
    except CertflowError as exc:
        raise _fail(exc) from exc
    click.echo(f"token #{info.id} of {info.username} revoked")
