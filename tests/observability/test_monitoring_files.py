"""The Grafana dashboard and the Prometheus alert rules in deploy/ parse, and every metric they
query is one certflow exports (a renamed metric would otherwise leave an empty panel or an
alert that never fires). Every alert has a runbook section in docs/operations.md."""

from __future__ import annotations

import json
import re

import yaml

from certflow.observability.collector import DatabaseCollector
from certflow.observability.metrics import instruments
from certflow.settings import get_settings
from tests.support import ROOT

# Prometheus's own series.
BUILTIN = {"up"}
PROMQL_WORDS = {"sum", "max", "min", "avg", "rate", "increase", "delta", "by", "without", "histogram_quantile",
                "absent", "or", "and", "le", "on", "count", "irate"}


def exported_names(sqlite_url: str) -> set[str]:
    names = set()
    for family in instruments().registry.collect():
        suffixes = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",)}.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    names |= {family.name for family in DatabaseCollector(get_settings()).collect()}
    return names


def queried_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"|\[[^\]]*\]|\{[^}]*\}', " ", expr)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_strings))
    return {w for w in words if w.startswith("certflow_") or w in BUILTIN}


def test_the_dashboard_parses_and_queries_only_exported_metrics(sqlite_url: str) -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "certflow.json").read_text())
    exported = exported_names(sqlite_url) | BUILTIN
    queried = set()
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["targets"], panel
        for target in panel["targets"]:
            names = queried_names(target["expr"])
            assert names, f"{panel['title']}: queries no certflow metric"
            assert names <= exported, f"{panel['title']}: {names - exported} not exported"
            queried |= names
    # the list: instances, open tasks, job latency and failures, incidents, queue depth,
    # timer lag, advance duration
    for needed in ("certflow_instances", "certflow_open_tasks", "certflow_job_seconds_bucket",
                   "certflow_job_failures_total", "certflow_open_incidents", "certflow_queue_depth",
                   "certflow_timer_lag_seconds", "certflow_advance_seconds_bucket"):
        assert needed in queried, needed


def test_alert_rules_parse_query_exported_metrics_and_have_a_runbook(sqlite_url: str) -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    exported = exported_names(sqlite_url) | BUILTIN
    operations = (ROOT / "docs" / "operations.md").read_text()
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 10
    for rule in alerts:
        name, expr = rule["alert"], rule["expr"]
        assert expr.count("(") == expr.count(")"), name
        assert queried_names(expr) and queried_names(expr) <= exported, f"{name}: {queried_names(expr) - exported}"
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        anchor = rule["annotations"]["runbook"].split("#")[1]
        assert anchor == name.lower()
        assert re.search(rf"^### {name}$", operations, re.M), f"{name} has no section in docs/operations.md"
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert {job["job_name"] for job in scrape["scrape_configs"]} == {"certflow-web", "certflow-worker", "certflow-beat"}
