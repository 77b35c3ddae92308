"""The operator's own settings (not per resource): given as an object, or read from FELES_* environment variables.

`feles operator` builds them from its options and hands them to kopf through its memo; `kopf run -m
feles_operator` in a pod (the Deployment and the chart set FELES_* variables) reads them from the environment.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from feles_operator import names


def _version() -> str:
    try:
        return importlib.metadata.version("feles")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree without installing
        return "latest"


#: The image a FelesSimulation without `.spec.image` runs (the chart sets FELES_IMAGE to its own image).
DEFAULT_IMAGE = f"feles:{_version()}"
#: Where the operator finds a simulation's orchestrator: the in-cluster Service. `{name}` and `{namespace}`
#: are the FelesSimulation's; outside the cluster point it at a port-forward, e.g. http://127.0.0.1:8080.
DEFAULT_URL_TEMPLATE = f"http://{{name}}-orchestrator.{{namespace}}.svc:{names.API_PORT}"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")

ENV = {
    "image": "FELES_IMAGE",
    "image_pull_policy": "FELES_IMAGE_PULL_POLICY",
    "orchestrator_url": "FELES_ORCHESTRATOR_URL_TEMPLATE",
    "poll_interval": "FELES_POLL_INTERVAL",
    "unreachable_after": "FELES_UNREACHABLE_AFTER",
    "network_policy": "FELES_NETWORK_POLICY",
    "operator_namespace": "FELES_OPERATOR_NAMESPACE",
    "operator_labels": "FELES_OPERATOR_LABELS",
}


class SettingsError(ValueError):
    """A setting (or the environment variable that gives it) with a value the operator cannot use."""


@dataclass(frozen=True, kw_only=True)
class OperatorSettings:
    """The operator's own settings, one object for every kind it serves (kopf's memo carries it to handlers)."""

    #: The image of resources that name none.
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    #: Base URL of an orchestrator's API, with `{name}` and `{namespace}`.
    orchestrator_url: str = DEFAULT_URL_TEMPLATE
    #: Seconds between two polls of every orchestrator.
    poll_interval: float = 5.0
    #: Seconds one request to an orchestrator may take.
    request_timeout: float = 5.0
    #: Seconds without an answer from an orchestrator before its resource says so (Ready False).
    unreachable_after: float = 120.0
    network_policy: bool = True
    #: Where the operator runs, so that the NetworkPolicy lets it reach the orchestrators (None: not in a pod).
    operator_namespace: str | None = None
    operator_labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """The settings the FELES_* environment variables give (`environ`, else the process's)."""
        return cls.from_options(environ)

    @classmethod
    def from_options(cls, environ: Mapping[str, str] | None = None, **options: object) -> OperatorSettings:
        """The settings `options` give (None: not given), the environment variables giving the others.

        An option is checked as its variable would be, and the error names the variable.
        """
        env = os.environ if environ is None else environ
        values = {attribute: value for attribute, value in options.items() if value is not None}
        for attribute, value in values.items():
            problem = _problem(attribute, value)
            if problem is not None:
                raise SettingsError(f"{ENV[attribute]}={value!r}: {problem}")
        for attribute, variable in ENV.items():
            raw = env.get(variable, "").strip()
            if raw and attribute not in values:
                values[attribute] = _parse(attribute, variable, raw)
        if "operator_namespace" not in values and env.get("POD_NAMESPACE"):
            values["operator_namespace"] = env["POD_NAMESPACE"]
        return cls(**values)  # type: ignore[arg-type]

    def url(self, name: str, namespace: str) -> str:
        """The base URL of a simulation's orchestrator API."""
        return self.orchestrator_url.format(name=name, namespace=namespace).rstrip("/")


def _parse(attribute: str, variable: str, raw: str) -> object:
    """The typed value of one environment variable."""
    value = _convert(attribute, variable, raw)
    problem = _problem(attribute, value)
    if problem is not None:
        raise SettingsError(f"{variable}={raw!r}: {problem}")
    return value


def _convert(attribute: str, variable: str, raw: str) -> object:
    if attribute in ("poll_interval", "unreachable_after"):
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{variable}={raw!r}: expected seconds") from None
    if attribute == "network_policy":
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise SettingsError(f"{variable}={raw!r}: expected true or false")
        return raw.lower() in ("true", "1", "yes")
    if attribute == "operator_labels":
        return parse_labels(raw, variable)
    return raw


def _problem(attribute: str, value: object) -> str | None:
    """What is wrong with a typed setting, whether it came from a variable or an option; None if nothing."""
    if attribute in ("poll_interval", "unreachable_after") and isinstance(value, int | float) and value <= 0:
        return "must be positive"
    if attribute == "image_pull_policy" and value not in PULL_POLICIES:
        return "expected Always, IfNotPresent or Never"
    if attribute == "orchestrator_url":
        try:
            str(value).format(name="n", namespace="ns")
        except (KeyError, IndexError, ValueError) as error:
            return f"only {{name}} and {{namespace}} may appear ({error})"
    return None


def parse_labels(raw: str, variable: str = "labels") -> dict[str, str]:
    """`a=b,c=d` as a dict."""
    labels = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SettingsError(f"{variable}={raw!r}: expected key=value[,key=value]")
        labels[key.strip()] = value.strip()
    return labels
