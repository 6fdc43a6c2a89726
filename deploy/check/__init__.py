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
The checks live in image.py (1, 4), schemas.py (2), environment.py (3), credentials.py (5) and
kubernetes.py (6); common.py holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from deploy.check.common import (
    COMPOSE_ONLY_VARS,
    ROOT,
    Files,
    Result,
    application_settings,
)
from deploy.check.credentials import (
    check_credentials,
    dockerfile_credential_problems,
    dotenv_credential_problems,
    yaml_credential_problems,
)
from deploy.check.environment import (
    check_settings,
    compose_env_names,
    kubernetes_env_names,
    unknown_names,
)
from deploy.check.image import (
    check_commands,
    check_hadolint,
    dockerfile_command,
    make_run_command,
)
from deploy.check.kubernetes import check_kubernetes_hardening, kubernetes_hardening_problems
from deploy.check.schemas import (
    check_compose_schema,
    check_kubernetes_schemas,
    compose_schema_errors,
    kubernetes_schema_errors,
)

__all__ = [
    "CHECKS",
    "COMPOSE_ONLY_VARS",
    "ROOT",
    "CheckFn",
    "Files",
    "Result",
    "application_settings",
    "check_settings",
    "compose_env_names",
    "compose_schema_errors",
    "dockerfile_command",
    "dockerfile_credential_problems",
    "dotenv_credential_problems",
    "kubernetes_env_names",
    "kubernetes_hardening_problems",
    "kubernetes_schema_errors",
    "main",
    "make_run_command",
    "run_checks",
    "unknown_names",
    "yaml_credential_problems",
]

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
