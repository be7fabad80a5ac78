"""Invoice numbers under a session that already holds the year's counter: the number taken
must come from the locked row as committed by others, not from the session's stale copy
(PostgreSQL, READ COMMITTED, two real connections)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

import handlers.invoicing  # noqa: F401  (registers the operators)
from certflow.settings import Settings
from certflow.store.billing import InvoiceSequence
from handlers import REGISTRY, HandlerContext
from tests.handlers.test_invoicing import add_user, pg_engine  # noqa: F401  (fixture)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def _create(session: Session, settings: Settings) -> str:
    ctx = HandlerContext(session=session, now=NOW, idempotency_key=uuid.uuid4().hex,
                         settings=settings)
    return str(REGISTRY["invoicing/create_invoice"](
        ctx, {"customer": "jan", "product": "book"})["invoice_number"])


@pytest.mark.integration
def test_a_stale_counter_in_the_session_does_not_reuse_a_number(
        pg_engine: Any, tmp_path: Path) -> None:  # noqa: F811
    settings = Settings(_env_file=None, var_dir=tmp_path)  # type: ignore[call-arg]
    with Session(pg_engine) as setup:
        add_user(setup)
        assert _create(setup, settings) == "2026-000001"
        setup.commit()
    slow = Session(pg_engine)
    try:
        # The slow worker read the counter earlier in its transaction (last_seq = 1) ...
        seen = slow.get(InvoiceSequence, 2026)
        assert seen is not None and seen.last_seq == 1
        # ... while another worker invoiced and committed (last_seq = 2) ...
        with Session(pg_engine) as fast:
            assert _create(fast, settings) == "2026-000002"
            fast.commit()
        # ... so the slow one must number from the locked, current row: 3, not 2 again.
        assert _create(slow, settings) == "2026-000003"
        slow.commit()
    finally:
        slow.close()
