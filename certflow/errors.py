"""Errors the facade and the services raise. Each maps to one HTTP status and one CLI exit
message, and says what was wrong in terms a user can act on (file, element id, field, task id).
They live in the core, not in the engine, because services (below the engine) raise them too."""

from __future__ import annotations

from dataclasses import dataclass, field


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


class Forbidden(CertflowError):
    status = 403


class InvalidInput(CertflowError):
    status = 422


@dataclass
class Problem:
    file: str
    element: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}" + (f" [{self.element}]" if self.element else "")
        return f"{where}: {self.message}"


@dataclass
class DeployError(CertflowError):
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        CertflowError.__init__(self, "deploy refused: " + "; ".join(str(p) for p in self.problems))

    status = 422
