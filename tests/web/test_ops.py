"""Operations endpoints as an operator and a load balancer see them: /healthz, /readyz with the
reason it is not ready, /metrics in Prometheus format with what the system is doing, and the
request id that follows a request into the jobs it causes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from certflow.bootstrap import migrate
from certflow.observability.context import log_context
from certflow.settings import reset_settings
from certflow.store.db import reset_engines, session_scope
from certflow.store.models import Job
from certflow.web.app import create_app
from tests.web.test_api import Api, serving


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CERTFLOW_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'migrated.sqlite'}")
    monkeypatch.setenv("REDIS_URL", "")
    reset_settings()
    reset_engines()
    migrate()
    with TestClient(create_app()) as client:
        yield client
    reset_engines()
    reset_settings()


def test_healthz_and_readyz_on_a_migrated_database(migrated: TestClient) -> None:
    assert migrated.get("/healthz").json() == {"status": "ok"}
    ready = migrated.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert {name: c["status"] for name, c in ready.json()["checks"].items()} == {
        "database": "ok", "migrations": "ok", "broker": "ok"}


def test_readyz_is_503_and_says_to_migrate_when_the_schema_is_not_at_head(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_METRICS_TOKEN", "ops-token")
    reset_settings()
    with TestClient(create_app()) as client:
        ready = client.get("/readyz", headers={"Authorization": "Bearer ops-token"})
        public = client.get("/readyz")
    assert ready.status_code == 503
    migrations = ready.json()["checks"]["migrations"]
    assert migrations["status"] == "fail" and "certflow migrate" in migrations["fix"]
    assert ready.json()["checks"]["database"]["status"] == "ok"
    # Whoever finds the site learns that it is not ready, not where its database is.
    assert public.status_code == 503 and public.json()["checks"]["migrations"] == {"status": "fail"}
    assert sqlite_url.rsplit("/", 1)[-1] not in public.text and "detail" not in public.text


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    monkeypatch.setenv("CERTFLOW_METRICS_TOKEN", "ops-token")
    reset_settings()
    reset_engines()
    try:
        with TestClient(create_app()) as client:
            ready = client.get("/readyz", headers={"Authorization": "Bearer ops-token"})
            assert client.get("/healthz").status_code == 200  # up, just not ready
    finally:
        reset_engines()
        reset_settings()
    assert ready.status_code == 503
    database = ready.json()["checks"]["database"]
    assert database["status"] == "fail" and "DATABASE_URL" in database["fix"]
    assert "secret" not in ready.text  # a password never leaks into a health answer


@pytest.fixture
def api(sqlite_url: str) -> Iterator[Api]:
    with serving() as people:
        people.deploy()
        yield people


def test_metrics_show_instances_tasks_advances_and_requests(api: Api) -> None:
    # The process's own metrics count from its start, so from the other tests' work too.
    advances = samples(api.client.get("/metrics").text).get(("certflow_advance_seconds_count", ()), 0)
    api.apply("cas", "APP-1")
    api.apply("ann", "APP-2")
    scrape = api.client.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    got = samples(scrape.text)
    assert got[("certflow_instances", (("process", "certification"), ("status", "running")))] == 2
    assert got[("certflow_open_tasks", (("group", "office"), ("overdue", "false")))] == 2
    # Each start is an advance (its confirmation mail is sent apart: certflow.engine.outbox).
    assert got[("certflow_advance_seconds_count", ())] >= advances + 2
    assert got[("certflow_timer_lag_seconds", ())] == 0
    assert got[("certflow_scrape_ok", (("source", "database"),))] == 1
    started = ("certflow_http_request_seconds_count",
               (("method", "POST"), ("route", "/api/instances"), ("status", "201")))
    assert got[started] >= 2  # the route template, not the raw path


def test_metrics_can_require_a_token(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_METRICS_TOKEN", "scrape-me")
    reset_settings()
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200


def test_the_request_id_comes_back_and_travels_into_the_jobs_it_causes(api: Api) -> None:
    response = api.post("/api/instances", "cas", {
        "process_id": "certification", "business_key": "APP-RID",
        "data": {"eligibility_route": "hbo_diploma", "motivation": "m", "candidate": "cas"}},
        headers={"X-Request-ID": "req-from-the-proxy"})
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == "req-from-the-proxy"
    with log_context():  # as a worker runs them: the jobs they write inherit the request id
        api.h.run_jobs()
    with session_scope() as s:
        ids = s.scalars(select(Job.request_id).where(Job.instance_id == response.json()["id"])).all()
    assert ids and set(ids) == {"req-from-the-proxy"}
    own = api.get("/healthz", None)
    assert len(own.headers["x-request-id"]) == 32  # none given: one is made
    odd = api.client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert odd.headers["x-request-id"] != "bad id\nwith newline"


def test_a_served_web_process_is_started_warm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              request: pytest.FixtureRequest) -> None:
    """``certflow web`` serves ``serve()``: before its first request the process has built its
    engine, loaded what that request would load lazily, and taken all of it out of the cyclic
    garbage collector's passes, as a worker does; the app answers as the cold one does."""
    import gc

    import certflow.bootstrap
    from certflow.web.app import serve

    monkeypatch.setenv("CERTFLOW_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'served.sqlite'}")
    monkeypatch.setenv("REDIS_URL", "")
    reset_settings()
    reset_engines()
    migrate()
    certflow.bootstrap.engine.cache_clear()
    request.addfinalizer(certflow.bootstrap.engine.cache_clear)
    request.addfinalizer(reset_engines)
    request.addfinalizer(gc.unfreeze)  # the test process's own heap goes back as it was
    gc.unfreeze()
    app = serve()
    assert certflow.bootstrap.engine.cache_info().currsize == 0 and gc.get_freeze_count() == 0
    with TestClient(app) as client:
        assert certflow.bootstrap.engine.cache_info().currsize == 1  # built before any request
        assert gc.get_freeze_count() > 50_000  # modules, SpiffWorkflow, SQLAlchemy, the engine
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert client.get("/register").status_code == 200  # a page, through the built engine
