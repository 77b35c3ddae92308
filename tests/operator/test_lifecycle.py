"""The operator's start and stop: settings handed to `run` reach the startup handler through kopf's memo."""

from __future__ import annotations

import logging
from typing import Any

import kopf
import pytest

import feles_operator  # noqa: F401  (registers every kind, as `kopf run -m feles_operator` does)
from feles_operator import lifecycle, main
from feles_operator.settings import OperatorSettings
from feles_operator.simulation import names
from feles_operator.simulation.poller import StatusPoller


class FakeApi:
    """Serves every kind's CRD at once; remembers being closed."""

    closed = False

    async def get(self, url: str) -> dict[str, Any]:
        assert url == f"/apis/{names.API_VERSION}"
        return {"resources": [{"name": kind.plural} for kind in lifecycle.SERVED]}

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def unreadable_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read from the environment would fail: a variable is invalid, and reading it is an error too."""
    monkeypatch.setenv("FELES_POLL_INTERVAL", "soon")

    def from_env(*_: Any, **__: Any) -> OperatorSettings:
        raise AssertionError("the startup read the environment although the memo holds settings")

    monkeypatch.setattr(OperatorSettings, "from_env", from_env)


def test_the_memo_settings_win_over_the_environment(unreadable_environment: None) -> None:
    given = OperatorSettings(image="registry.example/feles:memo")
    assert lifecycle.operator_settings(kopf.Memo(settings=given)) is given


def test_without_settings_in_the_memo_the_environment_gives_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FELES_IMAGE", "registry.example/feles:env")
    assert lifecycle.operator_settings(kopf.Memo()).image == "registry.example/feles:env"
    monkeypatch.setenv("FELES_POLL_INTERVAL", "soon")
    with pytest.raises(kopf.PermanentError, match="FELES_POLL_INTERVAL"):
        lifecycle.operator_settings(kopf.Memo())


@pytest.mark.asyncio
async def test_startup_hands_the_memo_settings_to_the_poller(
    unreadable_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeApi()
    monkeypatch.setattr(lifecycle.KubeApi, "from_environment", classmethod(lambda cls: api))
    given = OperatorSettings(image="registry.example/feles:memo", poll_interval=60.0)
    memo = kopf.Memo(settings=given)
    await lifecycle.startup(
        settings=kopf.OperatorSettings(), memo=memo, logger=logging.getLogger("test"), simulations={}
    )
    try:
        assert memo.settings is given and memo.api is api
        (poller, _), *others = memo.background
        assert not others and isinstance(poller, StatusPoller) and poller.settings is given
    finally:
        await lifecycle.cleanup(memo=memo)
    assert api.closed and all(task.done() for _, task in memo.background)


def test_run_passes_its_settings_to_kopf_in_the_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "configure", lambda **_: None)
    monkeypatch.setattr(kopf, "run", lambda **kwargs: calls.append(kwargs))
    given = OperatorSettings(image="registry.example/feles:memo")
    main.run(settings=given, namespaces=["team-a"])
    main.run(all_namespaces=True)
    assert calls[0]["memo"].settings is given and calls[0]["namespaces"] == ["team-a"]
    assert "settings" not in calls[1]["memo"] and calls[1]["clusterwide"] is True
