"""The deployment files pass `deploy.check`, and the checks catch what they are meant to."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from deploy import check
from kasparro.config import Settings

# The shape of a real CoinGecko key, built here so no key-shaped literal sits in the repo.
CG_PREFIX = "CG" + "-"

ROOT = check.ROOT
COMPOSE_OK = """
services:
  db:
    image: postgres:15
    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it in .env}
"""


@pytest.mark.parametrize("run", check.CHECKS, ids=lambda c: c.__name__)
def test_real_files_pass(run: check.CheckFn) -> None:
    result = run(check.Files())
    assert result.ok, result.render()


def test_main_exits_zero_on_the_real_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS ") == len(check.CHECKS)
    assert "deploy-check OK" in out


# --- credentials ------------------------------------------------------------------------------


def test_credential_default_in_compose_is_flagged() -> None:
    text = COMPOSE_OK.replace(
        "${POSTGRES_PASSWORD:?set it in .env}", "${POSTGRES_PASSWORD:-secret}"
    )
    problems = check.yaml_credential_problems(text, "docker-compose.yml")
    assert any("POSTGRES_PASSWORD:-" in p for p in problems), problems
    assert check.yaml_credential_problems(COMPOSE_OK, "docker-compose.yml") == []


@pytest.mark.parametrize(
    "text",
    [
        "x:\n  DATABASE_URL: postgresql+psycopg://kasparro:hunter2@db:5432/kasparro\n",
        "x:\n  DATABASE_URL: postgresql+psycopg://${U:?set}:hunter2@db/k\n",
        "x:\n  environment:\n    - ADMIN_API_KEY=abc123\n",
        f"kind: Secret\nstringData:\n  COINGECKO_API_KEY: {CG_PREFIX}abcdef\n",
        "env:\n  - name: ADMIN_API_KEY\n    value: abc123\n",
        "x:\n  password: hunter2\n",
        "x:\n  KEY: ${ADMIN_API_KEY-fallback}\n",
    ],
)
def test_credential_literals_in_yaml_are_flagged(text: str) -> None:
    assert check.yaml_credential_problems(text, "f.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "x:\n  DATABASE_URL: postgresql+psycopg://${U:?set}:${P:?set}@db:5432/${D:?set}\n",
        "x:\n  DATABASE_URL: postgresql+psycopg://<user>:<password>@<host>:5432/<db>\n",
        "kind: Secret\nstringData:\n  ADMIN_API_KEY: ''\n",
        "env:\n  - name: ADMIN_API_KEY\n    valueFrom:\n      secretKeyRef: {name: s, key: K}\n",
        "x:\n  KASPARRO_ENV: ${KASPARRO_ENV:-production}\n",
    ],
)
def test_placeholders_are_not_flagged(text: str) -> None:
    assert check.yaml_credential_problems(text, "f.yaml") == []


def test_dotenv_and_dockerfile_secrets_are_flagged() -> None:
    assert check.dotenv_credential_problems("ADMIN_API_KEY=abc\n", ".env.example")
    assert check.dotenv_credential_problems(f"# COINGECKO_API_KEY={CG_PREFIX}xyz\n", ".env.example")
    assert check.dotenv_credential_problems("ADMIN_API_KEY=\nLOG_LEVEL=INFO\n", "e") == []
    assert check.dockerfile_credential_problems("FROM x\nENV ADMIN_API_KEY=abc\n")
    assert check.dockerfile_credential_problems("FROM x\nARG DB_PASSWORD=pw\n")
    assert check.dockerfile_credential_problems("FROM x\nENV API_HOST=0.0.0.0\n") == []


# --- settings ---------------------------------------------------------------------------------


def test_unknown_env_var_in_compose_is_flagged() -> None:
    text = COMPOSE_OK + "  api:\n    image: k\n    environment:\n      API_WORKERS: '4'\n"
    names = check.compose_env_names(text)
    assert {"POSTGRES_PASSWORD", "API_WORKERS"} <= names
    allowed = check.application_settings() | check.COMPOSE_ONLY_VARS
    problems = check.unknown_names(names, allowed, "docker-compose.yml")
    assert problems == ["docker-compose.yml: API_WORKERS is not a setting the application reads"]


def test_unknown_env_var_in_kubernetes_is_flagged() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
        "data:\n  LOG_LEVEL: INFO\n  ETL_CRON: '* * * * *'\n"
    )
    names = check.kubernetes_env_names(text)
    assert check.unknown_names(names, check.application_settings(), "c.yaml") == [
        "c.yaml: ETL_CRON is not a setting the application reads"
    ]


def _copy_tree(tmp_path: Path) -> check.Files:
    for name in ("Dockerfile", "docker-compose.yml", ".env.example", "kasparro.env.example"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copytree(ROOT / "deploy" / "k8s", tmp_path / "deploy" / "k8s")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    return check.Files(tmp_path)


def test_undocumented_and_unread_settings_fail(tmp_path: Path) -> None:
    files = _copy_tree(tmp_path)
    assert check.check_settings(files).ok
    app_env = files.app_env_example.read_text()
    files.app_env_example.write_text(
        app_env.replace("# ETL_BATCH_SIZE=2000\n", "# ETL_BATCH=2000\n")
    )
    problems = check.check_settings(files).problems
    assert "kasparro.env.example: ETL_BATCH is not a setting the application reads" in problems
    assert "kasparro.env.example: ETL_BATCH_SIZE is missing" in problems
    doc = files.operations_doc.read_text()
    files.operations_doc.write_text(doc.replace("HTTP_MAX_ATTEMPTS", "HTTP_ATTEMPTS"))
    problems = check.check_settings(files).problems
    assert "docs/operations.md: HTTP_MAX_ATTEMPTS is missing" in problems


def test_a_setting_in_the_compose_env_file_is_flagged(tmp_path: Path) -> None:
    """compose passes kasparro.env, not .env, to the api: a setting in .env would be lost."""
    files = _copy_tree(tmp_path)
    files.env_example.write_text(files.env_example.read_text() + "# LOG_LEVEL=INFO\n")
    assert check.check_settings(files).problems == [
        ".env.example: LOG_LEVEL belongs in kasparro.env.example "
        "(compose passes that file, not .env, to the api)"
    ]


def test_the_api_must_read_the_settings_file(tmp_path: Path) -> None:
    files = _copy_tree(tmp_path)
    compose = files.compose.read_text()
    files.compose.write_text(compose.replace("      - ${KASPARRO_ENV_FILE:-kasparro.env}\n", ""))
    problems = check.check_settings(files).problems
    assert any("does not read env_file kasparro.env" in p for p in problems), problems


def test_a_new_sources_settings_need_only_its_documentation(tmp_path: Path) -> None:
    """A source plugin's settings reach the api through kasparro.env without a line in the
    compose file or either example file; only its documentation must name them."""
    files = _copy_tree(tmp_path)
    plugin = frozenset({"ZEPHYR_ENABLED", "ZEPHYR_API_KEY"})
    settings = check.application_settings() | plugin
    problems = check.check_settings(files, settings=settings).problems
    assert problems == [
        "docs/: the source setting ZEPHYR_API_KEY is documented nowhere",
        "docs/: the source setting ZEPHYR_ENABLED is documented nowhere",
    ]
    (files.root / "docs" / "zephyr.md").write_text("`ZEPHYR_ENABLED`, `ZEPHYR_API_KEY`: ...\n")
    assert check.check_settings(files, settings=settings).ok


def test_a_built_in_source_needs_no_line_in_the_example_files(tmp_path: Path) -> None:
    """Kraken's lines can go from kasparro.env.example: they are documented in docs/."""
    files = _copy_tree(tmp_path)
    app_env = files.app_env_example.read_text()
    kept = [line for line in app_env.splitlines(keepends=True) if "KRAKEN" not in line]
    assert len(kept) < len(app_env.splitlines())
    files.app_env_example.write_text("".join(kept))
    assert "KRAKEN" not in files.compose.read_text()
    assert check.check_settings(files).ok


def test_env_examples_are_loadable_by_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cp kasparro.env.example kasparro.env` (and `.env.example .env`) give settings the
    application accepts (nothing set empty)."""
    for name in check.application_settings():
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=(ROOT / ".env.example", ROOT / "kasparro.env.example"))
    assert settings.etl_schedule == Settings.model_fields["etl_schedule"].default


def test_the_settings_file_wins_over_dot_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LOG_LEVEL=ERROR\nETL_BATCH_SIZE=7\n")
    (tmp_path / "kasparro.env").write_text("LOG_LEVEL=DEBUG\n")
    settings = Settings()
    assert (settings.log_level, settings.etl_batch_size) == ("DEBUG", 7)


def test_configmap_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    data = yaml.safe_load((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text())["data"]
    for name in check.application_settings():
        monkeypatch.delenv(name, raising=False)
    for name, value in data.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings(_env_file=None)
    assert settings.kasparro_env == "production"
    assert settings.api_host == "0.0.0.0"


# --- commands and schemas ---------------------------------------------------------------------


def test_make_run_command_is_parsed() -> None:
    makefile = "run: $(STAMP)\n\t$(BIN)/kasparro serve\n\ntest:\n\t$(BIN)/pytest\n"
    assert check.make_run_command(makefile) == ["kasparro", "serve"]


def test_dockerfile_command_mismatch_is_flagged() -> None:
    argv, problems = check.dockerfile_command(
        'FROM a AS b\nCMD ["other"]\nFROM c\nENTRYPOINT ["kasparro"]\nCMD ["etl", "run"]\n'
    )
    assert argv == ["kasparro", "etl", "run"]
    assert problems == []
    _, problems = check.dockerfile_command("FROM c\nCMD kasparro serve\n")
    assert problems and "shell form" in problems[0]


def test_schemas_reject_typos() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    assert check.compose_schema_errors(compose.replace("depends_on:", "depends_onn:"))
    deployment = (ROOT / "deploy" / "k8s" / "api-deployment.yaml").read_text()
    problems, _ = check.kubernetes_schema_errors(
        deployment.replace("readinessProbe:", "readinesProbe:"), "d.yaml"
    )
    assert any("readinesProbe" in p for p in problems), problems
    problems, _ = check.kubernetes_schema_errors("apiVersion: v1\nkind: Pod\n", "p.yaml")
    assert problems and "no vendored schema" in problems[0]


def test_kubernetes_hardening_gaps_are_flagged() -> None:
    deployment = yaml.safe_load((ROOT / "deploy" / "k8s" / "api-deployment.yaml").read_text())
    job = yaml.safe_load((ROOT / "deploy" / "k8s" / "migrate-job.yaml").read_text())
    pdb = {"kind": "PodDisruptionBudget"}
    netpol = {"kind": "NetworkPolicy"}
    good = [("d", deployment), ("j", job), ("p", pdb), ("n", netpol)]
    assert check.kubernetes_hardening_problems(good) == []

    pod = deployment["spec"]["template"]["spec"]
    del pod["automountServiceAccountToken"]
    container = pod["containers"][0]
    del container["resources"]["limits"]["cpu"]
    container["livenessProbe"]["httpGet"]["path"] = "/health"
    del job["spec"]["activeDeadlineSeconds"]
    problems = check.kubernetes_hardening_problems([("d", deployment), ("j", job)])
    joined = "\n".join(problems)
    for expected in (
        "automountServiceAccountToken is not false",
        "has no limits for cpu",
        "livenessProbe must use /livez",
        "the Job has no activeDeadlineSeconds",
        "no PodDisruptionBudget",
        "no NetworkPolicy",
    ):
        assert expected in joined, problems


def test_the_image_runs_under_an_init_process(tmp_path: Path) -> None:
    files = _copy_tree(tmp_path)
    assert check.check_commands(files).ok
    text = files.dockerfile.read_text().replace('ENTRYPOINT ["tini", "--"]\n', "")
    files.dockerfile.write_text(text)
    assert any("init process" in p for p in check.check_commands(files).problems)
