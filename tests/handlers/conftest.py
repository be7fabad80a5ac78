"""Fixtures every handler test shares: an in-memory SQLite database with every table (SAVEPOINTs
working as on the real database), a session on it, and test settings."""

from tests.handlers._fixtures_records import engine, session, settings  # noqa: F401  (fixtures)
