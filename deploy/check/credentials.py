"""No credential-shaped default or literal in any deployment file (5)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from deploy.check.common import (
    CREDENTIAL_NAME,
    DOTENV_LINE,
    INTERPOLATION,
    PLACEHOLDER,
    URL_CREDENTIALS,
    Files,
    Result,
    load_yaml_documents,
)
from deploy.check.environment import dockerfile_env


def is_credential_name(name: str) -> bool:
    return bool(CREDENTIAL_NAME.search(name))


def _is_placeholder(value: str) -> bool:
    return bool(PLACEHOLDER.match(value.strip().strip("'\"")))


def text_credential_problems(text: str, where: str) -> list[str]:
    """Defaults in `${NAME:-value}` / `${NAME-value}` on credential names; passwords in URLs."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in INTERPOLATION.finditer(line):
            has_default = match["op"] in ("-", ":-", "+", ":+") and match["arg"]
            if has_default and is_credential_name(match["name"]):
                problems.append(
                    f"{where}:{number}: ${{{match['name']}{match['op']}...}} gives a "
                    "credential a default; use ${NAME:?message}"
                )
        # `${USER:?message}` may hold a colon: reduce references to `${NAME}` first.
        bare = INTERPOLATION.sub(lambda m: "${" + m["name"] + "}", line)
        for match in URL_CREDENTIALS.finditer(bare):
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
        match = DOTENV_LINE.match(line)
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
