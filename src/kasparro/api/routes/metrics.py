"""GET /metrics: Prometheus exposition, correct across worker processes.

With PROMETHEUS_MULTIPROC_DIR set (several workers), the samples of every process are collected
from that directory; otherwise the process's own default registry is exposed.
"""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from kasparro.api.errors import problem_responses

router = APIRouter(tags=["metrics"])


def exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        },
        **problem_responses(500),
    },
)
def metrics() -> Response:
    """HTTP requests and latency by route template and status; ETL records, runs, durations and
    last success per source. Never rate limited."""
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
