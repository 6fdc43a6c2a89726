"""The compose file and the Kubernetes manifests against their vendored JSON schemas (2)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from deploy.check.common import (
    COMPOSE_SCHEMA,
    KUBERNETES_SCHEMA,
    Files,
    Result,
    load_yaml_documents,
)


@cache
def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _schema_errors(schema: Any, instance: Any, where: str) -> list[str]:
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)
    problems = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        path = "/".join(str(part) for part in error.absolute_path) or "(root)"
        problems.append(f"{where}: {path}: {error.message}")
    return problems


def compose_schema_errors(compose_text: str, where: str = "docker-compose.yml") -> list[str]:
    documents = load_yaml_documents(compose_text)
    if len(documents) != 1:
        return [f"{where}: expected one YAML document, found {len(documents)}"]
    return _schema_errors(_json(COMPOSE_SCHEMA), documents[0], where)


def kubernetes_schema_errors(manifest_text: str, where: str) -> tuple[list[str], list[str]]:
    """Problems, and the `apiVersion/kind` of each document that was validated."""
    vendored = _json(KUBERNETES_SCHEMA)
    problems: list[str] = []
    kinds: list[str] = []
    for index, document in enumerate(load_yaml_documents(manifest_text)):
        label = f"{where}[{index}]"
        if not isinstance(document, dict):
            problems.append(f"{label}: not a mapping")
            continue
        key = f"{document.get('apiVersion')}/{document.get('kind')}"
        schema = vendored["kinds"].get(key)
        if schema is None:
            known = ", ".join(sorted(vendored["kinds"]))
            problems.append(f"{label}: no vendored schema for {key} (have: {known})")
            continue
        kinds.append(key)
        full = {"$schema": vendored["$schema"], **schema, "$defs": vendored["$defs"]}
        problems += _schema_errors(full, document, f"{label} {key}")
    return problems, kinds


def check_compose_schema(files: Files) -> Result:
    result = Result("compose file matches the Compose spec", "docker-compose.yml")
    result.problems += compose_schema_errors(files.compose.read_text(encoding="utf-8"))
    return result


def check_kubernetes_schemas(files: Files) -> Result:
    result = Result("Kubernetes manifests match their schemas")
    manifests = files.k8s_manifests
    if not manifests:
        result.problems.append("no deploy/k8s/*.yaml")
    counted: list[str] = []
    for path in manifests:
        problems, kinds = kubernetes_schema_errors(
            path.read_text(encoding="utf-8"), files.rel(path)
        )
        result.problems += problems
        counted += kinds
    result.detail = (
        f"{len(manifests)} files, {len(counted)} objects "
        f"({', '.join(sorted(set(counted)))}), {KUBERNETES_SCHEMA.name}"
    )
    return result
