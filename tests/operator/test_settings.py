"""The operator's settings from FELES_* environment variables."""

from __future__ import annotations

import pytest

from feles_operator.settings import DEFAULT_URL_TEMPLATE, OperatorSettings, SettingsError


def test_defaults() -> None:
    settings = OperatorSettings.from_env({})
    assert settings.orchestrator_url == DEFAULT_URL_TEMPLATE
    assert settings.url("sim", "team-a") == "http://sim-orchestrator.team-a.svc:8080"
    assert settings.network_policy is True and settings.operator_namespace is None
    assert settings.image.startswith("feles:")


def test_from_env() -> None:
    settings = OperatorSettings.from_env(
        {
            "FELES_IMAGE": "registry.example/feles:1.2",
            "FELES_IMAGE_PULL_POLICY": "Always",
            "FELES_ORCHESTRATOR_URL_TEMPLATE": "http://127.0.0.1:18080/",
            "FELES_POLL_INTERVAL": "2.5",
            "FELES_UNREACHABLE_AFTER": "60",
            "FELES_NETWORK_POLICY": "false",
            "POD_NAMESPACE": "feles-system",
            "FELES_OPERATOR_LABELS": "app.kubernetes.io/name=feles-operator, app.kubernetes.io/instance=feles",
        }
    )
    assert settings.image == "registry.example/feles:1.2" and settings.image_pull_policy == "Always"
    assert settings.url("a", "b") == "http://127.0.0.1:18080"
    assert (settings.poll_interval, settings.unreachable_after, settings.network_policy) == (2.5, 60.0, False)
    assert settings.operator_namespace == "feles-system"
    assert settings.operator_labels == {
        "app.kubernetes.io/name": "feles-operator",
        "app.kubernetes.io/instance": "feles",
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FELES_POLL_INTERVAL", "soon"),
        ("FELES_POLL_INTERVAL", "0"),
        ("FELES_NETWORK_POLICY", "maybe"),
        ("FELES_OPERATOR_LABELS", "novalue"),
        ("FELES_IMAGE_PULL_POLICY", "Sometimes"),
        ("FELES_ORCHESTRATOR_URL_TEMPLATE", "http://{host}:8080"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        OperatorSettings.from_env({variable: value})


def test_options_win_over_their_variables_and_are_checked_alike() -> None:
    environ = {"FELES_IMAGE": "from-env", "FELES_POLL_INTERVAL": "soon", "FELES_UNREACHABLE_AFTER": "30"}
    settings = OperatorSettings.from_options(environ, image="from-option", poll_interval=1.5, network_policy=None)
    assert (settings.image, settings.poll_interval, settings.unreachable_after) == ("from-option", 1.5, 30.0)
    assert settings.network_policy is True  # None: not given
    with pytest.raises(SettingsError, match="FELES_ORCHESTRATOR_URL_TEMPLATE"):
        OperatorSettings.from_options({}, orchestrator_url="http://{host}:8080")
    with pytest.raises(SettingsError, match="FELES_POLL_INTERVAL"):
        OperatorSettings.from_options({}, poll_interval=0.0)


def test_settings_are_built_by_keyword() -> None:
    with pytest.raises(TypeError):
        OperatorSettings("registry.example/feles:1.2")  # type: ignore[misc]
