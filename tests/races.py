"""Two requests at the same moment, on PostgreSQL: the first one's writes made and not yet
committed while the second runs, as a double click lands on the server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any


def while_pending(first: Callable[[Any], Any], second: Callable[[], Any],
                  opened: Callable[[], AbstractContextManager[Any]] | None = None,
                  then: Callable[[Any], Any] | None = None) -> Any:
    """``second`` while ``first``'s writes (in the session it is given: ``opened()``, by default
    a ``session_scope``) are flushed and not yet committed; they commit once ``second`` is seen
    waiting on them (it must wait: otherwise the test proves nothing); ``then``: more of the
first's work, in its session, once the second waits (to take a lock the second holds). Returns ``second``'s
    outcome, or the exception it raised."""
    from certflow.store.db import session_scope

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = second()
        except Exception as exc:  # noqa: BLE001  (the test looks at it)
            outcome["value"] = exc

    with (opened or session_scope)() as session:
        first(session)
        session.flush()
        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), f"the second request did not wait for the first: {outcome}"
        if then is not None:
            then(session)
            session.flush()
    thread.join(10)
    return outcome["value"]
