"""`feles data fetch` against a real HTTP server on 127.0.0.1 serving tiny files in the official formats."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from feles.cli import app
from feles.data import DataRequest, load_dataset
from feles.data import catalog as catalog_module
from feles.data.catalog import CatalogEntry, RemoteFile
from feles.data.fetch import FetchError, fetch_dataset
from tests.unit.dataset_files import write_cifar10, write_cifar100, write_emnist_zip, write_mnist

pytestmark = pytest.mark.integration


@dataclass
class Served:
    """What the server holds and how it misbehaves; it records every Range header it gets."""

    files: dict[str, bytes] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)  # path -> error status to answer
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before the connection drops
    honour_range: bool = True
    ranges: list[str | None] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    served: Served

    def do_GET(self) -> None:
        served = self.served
        name = self.path.lstrip("/")
        served.ranges.append(self.headers.get("Range"))
        if name in served.status or name not in served.files:
            self.send_error(served.status.get(name, 404))
            return
        body, start = served.files[name], 0
        wanted = self.headers.get("Range")
        if wanted and served.honour_range:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = served.cut_after.pop(name, None)
        self.wfile.write(body[start:] if cut is None else body[start : start + cut])
        if cut is not None:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    served = Served()
    handler = type("BoundHandler", (Handler,), {"served": served})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    httpd.server_close()


def entry_for(base: str, served: Served, folder: Path, name: str = "tiny") -> CatalogEntry:
    """A catalog entry for every file of `folder`, published on the server with its true hash."""
    files = []
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        served.files[path.name] = data
        files.append(RemoteFile(path.name, (f"{base}/{path.name}",), hashlib.sha256(data).hexdigest(), len(data)))
    return CatalogEntry(name, tuple(files), base)


def one_file(base: str, served: Served, data: bytes, name: str = "blob.bin") -> RemoteFile:
    served.files[name] = data
    return RemoteFile(name, (f"{base}/{name}",), hashlib.sha256(data).hexdigest(), len(data))


def request(data_dir: Path, **params: object) -> DataRequest:
    return DataRequest(0, 0, np.array([1, 1]), data_dir, params)


def make_source(name: str, folder: Path) -> None:
    if name in ("mnist", "fashion_mnist"):
        write_mnist(folder, [5, 0, 4], [7, 2])
    elif name == "emnist":
        write_emnist_zip(folder / "gzip.zip", {"byclass": ([5, 0, 4], [7, 2])})
    elif name == "cifar10":
        write_cifar10(folder, [5, 0, 4])
    else:
        write_cifar100(folder, [(1, 5), (2, 0), (3, 4)])


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "emnist", "cifar10", "cifar100"])
def test_a_fetched_dataset_loads(tmp_path: Path, server: tuple[str, Served], name: str) -> None:
    base, served = server
    make_source(name, tmp_path / "source")
    target = tmp_path / "data"
    fetched = fetch_dataset(entry_for(base, served, tmp_path / "source", name), target)
    assert all(item.downloaded for item in fetched)
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in (tmp_path / "source").iterdir())
    data = load_dataset(name, request(target))
    assert data.train.y.tolist()[:3] == [5, 0, 4]


def test_a_second_fetch_checks_and_keeps_the_files(tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    write_mnist(tmp_path / "source", [1], [2])
    entry = entry_for(base, served, tmp_path / "source")
    fetch_dataset(entry, tmp_path / "data")
    requests = len(served.ranges)
    again = fetch_dataset(entry, tmp_path / "data")
    assert not any(item.downloaded for item in again) and len(served.ranges) == requests


def test_the_progress_bar_shows_each_file(tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    write_mnist(tmp_path / "source", [1], [2])
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=120)
    fetch_dataset(entry_for(base, served, tmp_path / "source"), tmp_path / "data", console=console)
    shown = output.getvalue()
    assert "train-images-idx3-ubyte.gz" in shown and "t10k-labels-idx1-ubyte.gz" in shown
    assert "━" in shown  # the bar itself


def test_a_wrong_hash_fails_naming_both_hashes_and_leaves_no_file(tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    data = b"not the published file" * 100
    real = one_file(base, served, data)
    published = "0" * 64
    entry = CatalogEntry("tiny", (RemoteFile(real.name, real.urls, published, real.size),), base)
    with pytest.raises(FetchError) as error:
        fetch_dataset(entry, tmp_path / "data")
    message = str(error.value)
    assert "blob.bin" in message and published in message and hashlib.sha256(data).hexdigest() in message
    assert list((tmp_path / "data").iterdir()) == []


def test_a_404_is_a_clear_error(tmp_path: Path, server: tuple[str, Served]) -> None:
    base, _ = server
    entry = CatalogEntry("tiny", (RemoteFile("gone.bin", (f"{base}/gone.bin",), "a" * 64, 10),), base)
    with pytest.raises(FetchError, match=rf"could not download gone\.bin: {base}/gone\.bin: HTTP 404 Not Found"):
        fetch_dataset(entry, tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


def test_a_server_error_falls_back_to_the_next_mirror(tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    good = one_file(base, served, b"x" * 5000)
    served.status["broken/blob.bin"] = 500
    mirrored = RemoteFile(good.name, (f"{base}/broken/blob.bin", *good.urls), good.sha256, good.size)
    fetched = fetch_dataset(CatalogEntry("tiny", (mirrored,), base), tmp_path / "data")
    assert fetched[0].path.read_bytes() == b"x" * 5000


def test_no_server_is_a_network_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    entry = CatalogEntry("tiny", (RemoteFile("a.bin", (f"http://127.0.0.1:{port}/a.bin",), "a" * 64, 3),), "x")
    with pytest.raises(FetchError, match=r"could not download a\.bin: .*ConnectError") as failed:
        fetch_dataset(entry, tmp_path / "data")
    assert f"or copy a.bin into {tmp_path / 'data'} by hand" in str(failed.value)


def test_an_interrupted_download_keeps_only_a_part_file_and_resumes(tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    data = bytes(range(256)) * 400
    remote = one_file(base, served, data)
    served.cut_after["blob.bin"] = 30_000
    entry = CatalogEntry("tiny", (remote,), base)
    with pytest.raises(FetchError, match=r"30,000 bytes that arrived are kept in .*blob\.bin\.part"):
        fetch_dataset(entry, tmp_path / "data")
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["blob.bin.part"]  # nothing that looks complete
    fetch_dataset(entry, tmp_path / "data")
    assert served.ranges[-1] == "bytes=30000-"
    assert (tmp_path / "data" / "blob.bin").read_bytes() == data
    assert not (tmp_path / "data" / "blob.bin.part").exists()


def test_a_server_ignoring_ranges_restarts_the_download(tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    data = b"abc" * 10_000
    remote = one_file(base, served, data)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "blob.bin.part").write_bytes(b"zzz" * 10)  # a bad start, which resuming would keep
    served.honour_range = False
    fetch_dataset(CatalogEntry("tiny", (remote,), base), tmp_path / "data")
    assert served.ranges == ["bytes=30-"]
    assert (tmp_path / "data" / "blob.bin").read_bytes() == data


def test_a_different_file_in_the_way_is_left_alone(tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    remote = one_file(base, served, b"published")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "blob.bin").write_bytes(b"someone else's")
    with pytest.raises(FetchError, match=r"blob\.bin exists, but its SHA-256 is .* delete it"):
        fetch_dataset(CatalogEntry("tiny", (remote,), base), tmp_path / "data")
    assert (tmp_path / "data" / "blob.bin").read_bytes() == b"someone else's" and served.ranges == []


def test_the_cli_fetches_into_dir_and_lists_it(
    tmp_path: Path, server: tuple[str, Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, served = server
    write_cifar10(tmp_path / "source", [1, 2])
    monkeypatch.setitem(catalog_module.CATALOG, "cifar10", entry_for(base, served, tmp_path / "source", "cifar10"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FELES_DATA_DIR", raising=False)
    runner = CliRunner()
    result = runner.invoke(app, ["data", "fetch", "cifar10"])
    assert result.exit_code == 0, result.output
    cached = tmp_path / "cache" / "feles" / "datasets" / "cifar10"
    assert f"cifar10: ready in {cached}" in result.output
    assert load_dataset("cifar10", DataRequest(0, 0, np.array([1]), None, {})).train.y.tolist()[:2] == [1, 2]
    listed = runner.invoke(app, ["data", "list"])
    assert listed.exit_code == 0 and f"cifar10        {cached}" in listed.output
    assert "cifar100       missing (feles data fetch cifar100)" in listed.output


def test_the_cli_refuses_an_unknown_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "fetch", "imagenet", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no download known for dataset 'imagenet'" in result.output and "cifar10, cifar100" in result.output


def test_fetch_help_describes_the_command() -> None:
    result = CliRunner().invoke(app, ["data", "fetch", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for words in ("official source", "SHA-256", "--dir", "$FELES_DATA_DIR", "feles/datasets/NAME", "resume"):
        assert words in result.output, words
