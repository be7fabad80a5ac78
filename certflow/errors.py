"""Errors the facade and the services raise. Each maps to one HTTP status and one CLI exit
message, and says what was wrong in terms a user can act on (file, element id, field, task id).
They live in the core, not in the engine, because services (below the engine) raise them too."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from certflow.i18n import Message, N_, joined


class CertflowError(Exception):
    status = 400

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(CertflowError):
    status = 404


class Conflict(CertflowError):
    """The thing changed under you: a second claim, a task completed already."""

    status = 409


class DraftConflict(Conflict):
    """A studio draft saved by someone else since the editor loaded it (optimistic
    concurrency): ``revision`` is what is saved now (0: no draft any more, deployed or
    discarded), ``saved_by``/``saved_at`` who saved it and when (None when there is no draft)."""

    def __init__(self, name: str, revision: int, saved_by: str | None, saved_at: datetime | None) -> None:
        if saved_by is None or saved_at is None:
            text = f"the draft of {name} was deployed or discarded after you opened it"
        else:
            text = f"{saved_by} saved the draft of {name} at {saved_at.isoformat()}, after you opened it"
        super().__init__(text, revision=revision)
        self.name, self.revision, self.saved_by, self.saved_at = name, revision, saved_by, saved_at


class Forbidden(CertflowError):
    status = 403


class InvalidInput(CertflowError):
    status = 422


@dataclass
class Problem:
    """What deploy refuses, where: ``message`` is a ``Message`` (English; a page translates it)."""

    file: str
    element: str | None
    message: str

    def __str__(self) -> str:
        return str(self.said())

    def said(self) -> Message:
        """``str(self)``, its message translatable (the file and element stay as they are)."""
        where = f"{self.file}" + (f" [{self.element}]" if self.element else "")
        return Message("%(where)s: %(message)s", where=where, message=self.message)


@dataclass
class DeployError(CertflowError):
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        CertflowError.__init__(self, Message(N_("deploy refused: %(problems)s"),
                                             problems=joined([p.said() if isinstance(p, Problem) else str(p)
                                                              for p in self.problems])))

    status = 422
