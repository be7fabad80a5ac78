"""Seeing the running system: structured logs with request/instance/task/job ids, Prometheus
metrics (recorded where work happens, or computed from the projections at scrape time), and
the health checks shared by ``/readyz`` and ``certflow doctor``."""
