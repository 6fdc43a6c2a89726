"""Prometheus metrics, defined once. Correct across worker processes when PROMETHEUS_MULTIPROC_DIR
is set (prometheus-client's multiprocess mode); plain in-process registry otherwise."""

from __future__ import annotations

import os

from prometheus_client import Counter, Gauge, Histogram

# In multiprocess mode every process writes its samples under this directory: it must exist
# before the first sample (`kasparro serve` also empties it at start).
if _multiproc_dir := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(_multiproc_dir, exist_ok=True)

HTTP_REQUESTS = Counter(
    "kasparro_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "kasparro_http_request_duration_seconds",
    "HTTP request latency by route template and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ETL_RECORDS = Counter(
    "kasparro_etl_records_total",
    "ETL records by source and outcome (loaded, unchanged, quarantined, revised).",
    ["source", "outcome"],
)
ETL_RUNS = Counter(
    "kasparro_etl_runs_total",
    "Finished ETL runs by source and status.",
    ["source", "status"],
)
ETL_RUN_DURATION = Histogram(
    "kasparro_etl_run_duration_seconds",
    "ETL run duration by source and status.",
    ["source", "status"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
SOURCE_NEWEST_OBSERVATION = Gauge(
    "kasparro_source_newest_observation_timestamp_seconds",
    "Unix time of the newest observation per source (alert on time() minus this: freshness).",
    ["source"],
    multiprocess_mode="max",
)
ETL_LAST_SUCCESS = Gauge(
    "kasparro_etl_last_success_timestamp_seconds",
    "Unix time of the last successful ETL run per source.",
    ["source"],
    multiprocess_mode="max",
)
DRIFT_EVENTS = Counter(
    "kasparro_drift_events_total",
    "Schema drift events by source, kind (missing, new, type_change, rename) and action.",
    ["source", "kind", "action"],
)
ANOMALIES = Counter(
    "kasparro_anomalies_total",
    "Anomalies by source and kind (record_count_drop, duration_spike, error_spike, stale_source, "
    "price_outlier).",
    ["source", "kind"],
)
