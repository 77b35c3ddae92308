"""Every command's --help, in an 80-column terminal, names each of its options and arguments in full."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from feles.cli import app


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command under `group`, with the words that invoke it (typer's own click: duck-typed)."""
    found: list[tuple[tuple[str, ...], Any]] = []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if hasattr(command, "commands"):
            found += _commands(command, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_every_command_is_listed() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"run", "worker", "orchestrator", "sweep", "analyze", "operator", "validate", "data fetch"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS])
def test_help_in_80_columns_names_every_option_in_full(path: tuple[str, ...], command: Any) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output  # nothing cut short
    for param in command.params:
        for name in [*param.opts, *param.secondary_opts]:
            if name.startswith("-"):
                assert name in result.output, f"{' '.join(path)} --help does not show {name}"
    assert max(len(line) for line in result.output.splitlines()) <= 80
