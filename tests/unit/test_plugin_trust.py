"""`feles validate` runs no code a spec names (issue 12.6): import paths must name the right kind of plug-in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from feles.config import SimulationSpec
from feles.plugin_checks import plugin_errors
from feles.registry import UnknownPluginError
from feles.strategies import SELECTORS


def _validate(tmp_path: Path, document: dict) -> tuple[int, str]:
    """`python -m feles validate` on the document, as a user runs it: exit code and output."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-m", "feles", "validate", str(path)], capture_output=True, text=True, env=environment
    )
    return result.returncode, result.stdout + result.stderr


def test_validate_does_not_run_a_shell_command_named_as_a_selection(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    # subprocess.run(params) runs the keys of the params mapping as a command line.
    command = {"/bin/sh": 1, "-c": 1, f"touch {marker}": 1}
    document = {"algorithms": {"fit": {"selection": "subprocess:run", "selection_params": command}}}
    code, output = _validate(tmp_path, document)
    assert not marker.exists(), "validate executed the spec's command"
    assert code == 1
    assert "algorithms.fit.selection" in output and "is not a selection strategy" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("path", ["os:system", "builtins:print", "subprocess:Popen"])
def test_an_import_path_must_name_a_subclass_of_the_base(path: str) -> None:
    with pytest.raises(UnknownPluginError, match=r"must name a subclass of feles\.strategies"):
        SELECTORS.get(path)


def test_a_user_plug_in_is_imported_and_type_checked_but_never_built(tmp_path: Path, monkeypatch) -> None:
    module = tmp_path / "noisy_selector.py"
    module.write_text(
        "from feles.strategies import Selector\n"
        "BUILT = []\n"
        "class Noisy(Selector):\n"
        "    def __init__(self, params):\n"
        "        BUILT.append(params)\n"
        "        super().__init__(params)\n"
        "    def select_devices(self, context):\n"
        "        return context.available\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = SimulationSpec.model_validate({"algorithms": {"fit": {"selection": "noisy_selector:Noisy"}}})
    assert plugin_errors(spec) == []
    assert sys.modules["noisy_selector"].BUILT == []


def test_a_plug_in_module_that_raises_oserror_on_import_is_a_spec_error(tmp_path: Path) -> None:
    (tmp_path / "broken_plugin.py").write_text("raise OSError('no such device')\n")
    code, output = _validate(tmp_path, {"algorithms": {"fit": {"selection": "broken_plugin:Thing"}}})
    assert code == 1 and "no such device" in output and "Traceback" not in output
