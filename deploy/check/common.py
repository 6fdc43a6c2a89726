"""What every check shares: where the files are, the result, the names allowed besides the
application's settings, and the application's settings themselves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = ROOT / "deploy" / "schemas"
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

INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")
DOTENV_LINE = re.compile(r"^\s*(?:#\s*)?(?:export\s+)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
CREDENTIAL_NAME = re.compile(
    r"pass(word|wd)?($|_)|secret(?!_?(key_?)?ref$)|token|api_?key|private_?key|access_?key|_key$",
    re.IGNORECASE,
)
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@]+:(?P<password>[^\s@/]+)@")
# What stands in for a value: nothing, a ${VAR} or ${VAR:?message} reference, or <placeholder>.
# `${VAR:-}` (empty when unset) gives no default either.
PLACEHOLDER = re.compile(
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


def application_settings() -> frozenset[str]:
    """Environment variable names of kasparro.config.Settings (pydantic-settings upper-cases)."""
    from kasparro.config import Settings

    return frozenset(name.upper() for name in Settings.model_fields)


def core_settings() -> frozenset[str]:
    """Kasparro's own settings: those of every source aside."""
    from kasparro.config import CoreSettings

    return frozenset(name.upper() for name in CoreSettings.model_fields)
