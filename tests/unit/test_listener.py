"""feles.orchestrator.listener: the orchestrator's own socket, or one a launcher passes down."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from feles.orchestrator.listener import InheritedSocketError, bind_socket, inherited_socket


def test_bound_socket_listens_on_a_free_port_and_says_tcp() -> None:
    with bind_socket("127.0.0.1", 0) as sock:
        assert sock.getsockname()[1] > 0
        assert sock.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY only then
        with socket.create_connection(sock.getsockname()[:2], timeout=5):
            pass


def test_an_inherited_listening_socket_is_adopted() -> None:
    with bind_socket("127.0.0.1", 0) as original:
        adopted = inherited_socket(os.dup(original.fileno()))
        with adopted:
            assert adopted.getsockname() == original.getsockname()


def test_a_file_is_not_a_socket(tmp_path: Path) -> None:
    with (tmp_path / "f").open("w") as handle, pytest.raises(InheritedSocketError, match="is not an open socket"):
        inherited_socket(handle.fileno())


def test_a_closed_descriptor_is_named() -> None:
    read, write = os.pipe()
    os.close(read)
    os.close(write)
    with pytest.raises(InheritedSocketError, match=f"file descriptor {read} is not an open socket"):
        inherited_socket(read)


def test_a_socket_that_does_not_listen_is_refused() -> None:
    with socket.socket() as unbound, pytest.raises(InheritedSocketError, match="not a listening TCP socket"):
        inherited_socket(os.dup(unbound.fileno()))


def test_orchestrator_cli_names_a_bad_fd_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from feles.cli import app

    spec = tmp_path / "spec.yaml"
    spec.write_text(f"simulation: {{dataset: digits, output_folder: {tmp_path / 'out'}}}\n")
    (tmp_path / "out").mkdir()
    checkpoint = tmp_path / "out" / "checkpoint.safetensors"
    checkpoint.write_bytes(b"kept")
    with (tmp_path / "f").open("w") as handle:
        fd = handle.fileno()
        command = ["orchestrator", "--config", str(spec), "--insecure", "--fresh", "--fd", str(fd)]
        result = CliRunner().invoke(app, command)
    assert result.exit_code == 2
    assert f"--fd: file descriptor {fd} is not an open socket" in result.output
    assert checkpoint.read_bytes() == b"kept"  # --fresh discards nothing when the orchestrator cannot serve
