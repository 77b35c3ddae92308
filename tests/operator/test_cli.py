"""`feles crd` and `feles operator` (its argument checks; running it needs a cluster or kmock)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from typer.testing import CliRunner

from feles.cli import app
from feles_operator import main
from feles_operator.crd import crd_yaml
from feles_operator.settings import ENV

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's FELES_* variables stay out of these tests (empty means unset; monkeypatch restores them)."""
    for variable in ENV.values():
        monkeypatch.setenv(variable, "")


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


def test_operator_hands_its_options_to_kopf_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(main, "run", lambda **kwargs: calls.append(kwargs))
    before = dict(os.environ)
    options = ["--image", "registry.example/feles:cli", "--poll-interval", "2", "--no-network-policy"]
    arguments = ["operator", "-n", "team-a", *options, "--orchestrator-url", "http://127.0.0.1:18080"]
    result = runner.invoke(app, arguments, env={"FELES_IMAGE_PULL_POLICY": "Always"})
    assert result.exit_code == 0, result.output
    settings = calls[0]["settings"]
    assert settings.image == "registry.example/feles:cli"
    assert (settings.poll_interval, settings.network_policy) == (2.0, False)
    assert settings.url("a", "b") == "http://127.0.0.1:18080"
    assert settings.image_pull_policy == "Always"  # a variable without an option still counts
    assert calls[0]["namespaces"] == ["team-a"] and calls[0]["all_namespaces"] is False
    assert dict(os.environ) == before  # nothing passes through the environment any more


def test_operator_options_come_from_their_variables_too(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(main, "run", lambda **kwargs: calls.append(kwargs))
    result = runner.invoke(app, ["operator", "-A"], env={"FELES_IMAGE": "registry.example/feles:env"})
    assert result.exit_code == 0, result.output
    assert calls[0]["settings"].image == "registry.example/feles:env"
