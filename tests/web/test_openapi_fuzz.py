"""Schemathesis against /openapi.json: every operation, with generated (bounded) examples, as a
staff user and as a candidate, on an app with the processes deployed and one application in
flight. No example may get a server error (5xx): bad input is a 4xx that says what is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import _use
from tests.web.test_api import Api, serving

EXAMPLES = 8  # per operation and role: enough to find a 500, short enough for `make test`


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    from certflow.bootstrap import create_schema
    from certflow.settings import reset_settings
    from certflow.store.db import reset_engines

    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as monkeypatch:
        url = f"sqlite:///{tmp / 'fuzz.sqlite'}"
        _use(monkeypatch, tmp / "var", url)
        create_schema(url)
        with serving() as api:
            api.deploy()
            api.apply()
            yield api
        reset_engines()
        reset_settings()


@pytest.fixture(scope="module")
def api_schema(live: Api) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", live.client.app)


schema = schemathesis.pytest.from_fixture("api_schema")


# Every operation runs inside this one test item: on a loaded machine the whole sweep takes
# longer than the suite's 300 s per test.
@pytest.mark.timeout(1200)
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case: schemathesis.Case, live: Api) -> None:
    for who in ("olga", "cas"):  # staff, and a candidate with an application of her own
        # Deploying every process takes seconds, more on a loaded machine than schemathesis's
        # 10 s default: a slow answer is not a server error.
        response = case.call(headers=live.auth(who), timeout=120)
        case.validate_response(response, checks=[not_a_server_error])
