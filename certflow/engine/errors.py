"""Moved to ``certflow.errors`` (services raise them too, and services sit below the engine).
Kept so code written against the old path still imports; new code imports certflow.errors."""

from certflow.errors import (  # noqa: F401
    CertflowError,
    Conflict,
    DeployError,
    Forbidden,
    InvalidInput,
    NotFound,
    Problem,
)
