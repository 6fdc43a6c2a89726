"""Settings (3): every variable the deployment files set is read; every setting is documented."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from deploy.check.common import (
    APP_ENV_FILE,
    COMPOSE_ONLY_VARS,
    DOTENV_LINE,
    IMAGE_VAR_PREFIXES,
    IMAGE_VARS,
    INTERPOLATION,
    RUNTIME_VARS,
    Files,
    Result,
    application_settings,
    core_settings,
    load_yaml_documents,
)


def dotenv_names(text: str) -> list[str]:
    """Names set or shown (commented out) in a dotenv file."""
    return [m["name"] for line in text.splitlines() if (m := DOTENV_LINE.match(line))]


def _interpolated_names(text: str) -> set[str]:
    return {m["name"] for m in INTERPOLATION.finditer(text)}


def _environment_keys(environment: Any) -> list[str]:
    """Keys of a compose `environment:` in either its mapping or its list form."""
    if isinstance(environment, dict):
        return [str(key) for key in environment]
    if isinstance(environment, list):
        return [str(item).split("=", 1)[0] for item in environment]
    return []


def compose_env_names(compose_text: str) -> set[str]:
    """Variables a compose file sets in its services or fills in from the environment."""
    names = _interpolated_names(compose_text)
    for document in load_yaml_documents(compose_text):
        services = document.get("services", {}) if isinstance(document, dict) else {}
        for service in (services or {}).values():
            if isinstance(service, dict):
                names.update(_environment_keys(service.get("environment")))
    return names


def containers(pod_spec: Any) -> Iterator[dict[str, Any]]:
    if isinstance(pod_spec, dict):
        for key in ("initContainers", "containers"):
            yield from (c for c in pod_spec.get(key) or [] if isinstance(c, dict))


def pod_specs(document: Any) -> Iterator[dict[str, Any]]:
    """Pod specs inside a Deployment, Job or CronJob (or a bare Pod)."""
    if not isinstance(document, dict):
        return
    kind = document.get("kind")
    spec = document.get("spec") or {}
    if kind == "Pod":
        yield spec
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        yield (spec.get("template") or {}).get("spec") or {}
    elif kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        yield (job.get("template") or {}).get("spec") or {}


def kubernetes_env_names(manifest_text: str) -> set[str]:
    """Variables set by ConfigMaps and Secrets (all of them reach pods via envFrom) and by
    containers' `env:`."""
    names = _interpolated_names(manifest_text)
    for document in load_yaml_documents(manifest_text):
        if not isinstance(document, dict):
            continue
        if document.get("kind") in ("ConfigMap", "Secret"):
            for key in ("data", "stringData"):
                names.update(str(name) for name in document.get(key) or {})
        for pod_spec in pod_specs(document):
            for container in containers(pod_spec):
                names.update(str(item.get("name")) for item in container.get("env") or [])
    return names


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_env(text: str) -> dict[str, str]:
    """ENV and ARG names and values (`ENV A=1 B=2`, legacy `ENV A 1`, `ARG A[=1]`)."""
    values: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions(text):
        if keyword not in ("ENV", "ARG"):
            continue
        tokens = shlex.split(rest, posix=True)
        if keyword == "ENV" and tokens and "=" not in tokens[0]:
            values[tokens[0]] = " ".join(tokens[1:])
            continue
        for token in tokens:
            name, _, value = token.partition("=")
            values[name] = value
    return values


def unknown_names(names: Iterable[str], allowed: frozenset[str], where: str) -> list[str]:
    return [
        f"{where}: {name} is not a setting the application reads"
        for name in sorted(set(names))
        if name not in allowed
    ]


def compose_api_env_files(compose_text: str) -> list[str]:
    """The env files the compose `api` service reads its settings from."""
    for document in load_yaml_documents(compose_text):
        api = ((document or {}).get("services") or {}).get("api")
        if isinstance(api, dict):
            env_file = api.get("env_file") or []
            entries = [env_file] if isinstance(env_file, str | dict) else env_file
            return [str(e.get("path") if isinstance(e, dict) else e) for e in entries]
    return []


def _documented_names(paths: Iterable[Path]) -> set[str]:
    return {
        name
        for path in paths
        for name in re.findall(r"[A-Z][A-Z0-9_]+", path.read_text(encoding="utf-8"))
    }


def check_settings(
    files: Files, settings: frozenset[str] | None = None, core: frozenset[str] | None = None
) -> Result:
    """`settings`: every setting (sources' included); `core`: Kasparro's own among them."""
    settings = application_settings() if settings is None else settings
    core = core_settings() if core is None else core
    result = Result("settings: only real ones set, every one documented")
    compose_allowed = settings | COMPOSE_ONLY_VARS | RUNTIME_VARS
    compose_text = files.compose.read_text(encoding="utf-8")
    result.problems += unknown_names(
        compose_env_names(compose_text), compose_allowed, "docker-compose.yml"
    )
    if not any(APP_ENV_FILE in entry for entry in compose_api_env_files(compose_text)):
        result.problems.append(
            f"docker-compose.yml: the api service does not read env_file {APP_ENV_FILE}, so "
            "the application's settings would not reach it"
        )

    # .env is compose's (it fills ${...}); compose does not pass it to the api.
    for name in dotenv_names(files.env_example.read_text(encoding="utf-8")):
        if name in settings or name in RUNTIME_VARS:
            result.problems.append(
                f".env.example: {name} belongs in {files.rel(files.app_env_example)} "
                "(compose passes that file, not .env, to the api)"
            )
        elif name not in COMPOSE_ONLY_VARS:
            result.problems.append(f".env.example: {name} is not a variable compose reads")

    app_env = files.app_env_example
    if app_env.exists():
        app_names = dotenv_names(app_env.read_text(encoding="utf-8"))
        result.problems += unknown_names(app_names, settings | RUNTIME_VARS, files.rel(app_env))
        result.problems += [
            f"{files.rel(app_env)}: {name} is missing" for name in sorted(core - set(app_names))
        ]
    else:
        result.problems.append(f"{files.rel(app_env)} does not exist")

    for path in files.k8s_manifests:
        result.problems += unknown_names(
            kubernetes_env_names(path.read_text(encoding="utf-8")),
            settings | RUNTIME_VARS,
            files.rel(path),
        )
    image_names = [
        name
        for name in dockerfile_env(files.dockerfile.read_text(encoding="utf-8"))
        if name not in IMAGE_VARS and not name.startswith(IMAGE_VAR_PREFIXES)
    ]
    result.problems += unknown_names(image_names, settings | RUNTIME_VARS, "Dockerfile")

    doc = files.operations_doc
    if doc.exists():
        words = _documented_names([doc])
        result.problems += [f"{files.rel(doc)}: {name} is missing" for name in sorted(core - words)]
    else:
        result.problems.append(f"{files.rel(doc)} does not exist")
    # A source documents its own settings, wherever its page is.
    documented = _documented_names(files.docs)
    result.problems += [
        f"docs/: the source setting {name} is documented nowhere"
        for name in sorted(settings - core - documented)
    ]
    result.detail = f"{len(core)} of Kasparro's own settings, {len(settings - core)} of its sources"
    return result
