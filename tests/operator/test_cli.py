"""`feles crd` and `feles operator` (its argument checks; running it needs a cluster or kmock)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from feles.cli import app
from feles_operator.crd import crd_yaml
from feles_operator.settings import ENV

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """`feles operator` exports its options as FELES_* variables: restore them after each test."""
    for variable in ENV.values():
        monkeypatch.setenv(variable, "")  # empty means unset; monkeypatch puts the old state back


def test_crd_prints_the_generated_definition() -> None:
    result = runner.invoke(app, ["crd"])
    assert result.exit_code == 0
    assert result.stdout == crd_yaml()


def test_operator_help_lists_its_options() -> None:
    result = runner.invoke(app, ["operator", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--namespace", "--all-namespaces", "--standalone", "--liveness", "--orchestrator-url"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("arguments", "env", "message"),
    [
        ([], {}, "--all-namespaces"),
        (["-A", "-n", "team-a"], {}, "--all-namespaces"),
        (["-A"], {"FELES_OPERATOR_LABELS": "oops"}, "FELES_OPERATOR_LABELS"),
        (["-A", "--orchestrator-url", "http://{host}:8080"], {}, "FELES_ORCHESTRATOR_URL_TEMPLATE"),
    ],
)
def test_operator_refuses_bad_arguments_before_starting(arguments: list[str], env: dict, message: str) -> None:
    result = runner.invoke(app, ["operator", *arguments], env=env)
    assert result.exit_code == 2
    assert message in result.output
