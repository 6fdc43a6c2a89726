"""Kubernetes hardening (6): no service-account token, limits, bounded Jobs, probes, a
PodDisruptionBudget and a NetworkPolicy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deploy.check.common import Files, Result, load_yaml_documents
from deploy.check.environment import containers, pod_specs


def _job_specs(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = document.get("spec") or {}
    if document.get("kind") == "Job":
        yield spec
    elif document.get("kind") == "CronJob":
        yield (spec.get("jobTemplate") or {}).get("spec") or {}


def _probe_path(container: dict[str, Any], probe: str) -> str | None:
    path = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
    return str(path) if path is not None else None


def kubernetes_hardening_problems(documents: list[tuple[str, Any]]) -> list[str]:
    """No service-account token, requests and limits on every container, bounded Jobs, probes
    on /livez and /readyz, a PodDisruptionBudget and a NetworkPolicy for the API."""
    problems: list[str] = []
    kinds: set[str] = set()
    for where, document in documents:
        if not isinstance(document, dict):
            continue
        kind = str(document.get("kind"))
        kinds.add(kind)
        label = f"{where} {kind} {(document.get('metadata') or {}).get('name')}"
        for pod_spec in pod_specs(document):
            if pod_spec.get("automountServiceAccountToken") is not False:
                problems.append(f"{label}: automountServiceAccountToken is not false")
            for container in containers(pod_spec):
                resources = container.get("resources") or {}
                for part in ("requests", "limits"):
                    missing = {"cpu", "memory"} - set(resources.get(part) or {})
                    if missing:
                        problems.append(
                            f"{label}: container {container.get('name')} has no {part} "
                            f"for {', '.join(sorted(missing))}"
                        )
                if kind == "Deployment":
                    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
                        if _probe_path(container, probe) != path:
                            problems.append(f"{label}: {probe} must use {path}")
        for job_spec in _job_specs(document):
            for field_name in ("activeDeadlineSeconds", "backoffLimit"):
                if field_name not in job_spec:
                    problems.append(f"{label}: the Job has no {field_name}")
    for needed in ("PodDisruptionBudget", "NetworkPolicy"):
        if "Deployment" in kinds and needed not in kinds:
            problems.append(f"deploy/k8s: no {needed} for the API Deployment")
    return problems


def check_kubernetes_hardening(files: Files) -> Result:
    result = Result("Kubernetes pods hardened and bounded")
    documents = [
        (files.rel(path), document)
        for path in files.k8s_manifests
        for document in load_yaml_documents(path.read_text(encoding="utf-8"))
    ]
    result.problems += kubernetes_hardening_problems(documents)
    result.detail = f"{len(documents)} objects"
    return result


# --------------------------------------------------------------------------------------------
