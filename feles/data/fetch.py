"""`feles data fetch`: a dataset's files downloaded from their source, each checked against its published SHA-256.

A file is written as `NAME.part` and renamed to NAME only once its hash matches, so an interrupted or damaged
download never leaves a file that looks complete. An interrupted download resumes where it stopped (an HTTP
range request) when the command runs again; a download whose hash does not match is deleted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from feles import __version__
from feles.data.catalog import CATALOG, CatalogEntry, RemoteFile
from feles.data.dataset import DATASETS, DatasetUnavailableError, FileDatasetSource

CHUNK = 1 << 20
TIMEOUT = httpx.Timeout(30.0, connect=15.0)
PART_SUFFIX = ".part"


class FetchError(RuntimeError):
    """A download that failed: the message names the file, the URL and what went wrong."""


class _ServerRefused(Exception):
    """An HTTP error status: the next URL may still serve the file."""


@dataclass(frozen=True)
class Fetched:
    """A file of the dataset in place; downloaded is False when it was there already, with the right hash."""

    path: Path
    downloaded: bool


def fetch_dataset(entry: CatalogEntry, directory: Path, console: Console | None = None) -> list[Fetched]:
    """Every file of `entry` in `directory`, downloading the missing ones; a progress bar on `console` if given."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FetchError(f"cannot create the folder {directory}: {error}") from error
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    client = httpx.Client(follow_redirects=True, timeout=TIMEOUT, headers={"User-Agent": f"feles/{__version__}"})
    with client as http, Progress(*columns, console=console, disable=console is None) as progress:
        return [fetch_file(remote, directory, http, progress) for remote in entry.files]


def fetch_file(remote: RemoteFile, directory: Path, http: httpx.Client, progress: Progress) -> Fetched:
    """One file in place: kept when present with the right hash, else downloaded, checked and renamed into place."""
    target = directory / remote.name
    if target.exists():
        found = sha256_of(target)
        if found == remote.sha256:
            return Fetched(target, downloaded=False)
        raise FetchError(
            f"{target} exists, but its SHA-256 is {found}, not the published {remote.sha256}: it is another file"
            f" or a damaged copy; delete it to download {remote.name} again, or fetch into another --dir"
        )
    partial = directory / (remote.name + PART_SUFFIX)
    task = progress.add_task(remote.name, total=remote.size)
    failures = []
    for url in remote.urls:
        try:
            _download(http, url, partial, remote, progress, task)
        except _ServerRefused as error:
            failures.append(f"{url}: {error}")
            continue
        except httpx.HTTPError as error:  # no connection, timeouts, a broken stream
            failures.append(f"{url}: {type(error).__name__}: {error}")
            continue
        except OSError as error:
            raise FetchError(f"cannot write {partial}: {error}") from error
        _verify(partial, remote, url)
        partial.replace(target)
        return Fetched(target, downloaded=True)
    kept = f"; the {partial.stat().st_size:,} bytes that arrived are kept in {partial}" if partial.exists() else ""
    raise FetchError(
        f"could not download {remote.name}: " + "; ".join(failures) + kept + ". Run the command again to retry"
        f" (it resumes), or copy {remote.name} into {directory} by hand from a machine with internet access"
    )


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _download(
    http: httpx.Client, url: str, partial: Path, remote: RemoteFile, progress: Progress, task: TaskID
) -> None:
    """Append the rest of the file to `partial` (all of it when the server ignores the range)."""
    offset = partial.stat().st_size if partial.exists() else 0
    if offset >= remote.size:  # as long as the whole file, yet not renamed: not worth resuming
        partial.unlink()
        offset = 0
    # The file's own bytes: no transfer compression to undo (a .gz served with Content-Encoding: gzip would
    # otherwise arrive unpacked), and raw chunks as they come, so an interruption keeps all that arrived.
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
    with http.stream("GET", url, headers=headers) as response:
        if response.status_code == 206 and _range_start(response) == offset:
            mode = "ab"
        elif response.status_code == 200:
            mode, offset = "wb", 0
        else:
            if response.status_code == 416:
                partial.unlink(missing_ok=True)  # the server cannot resume it: start afresh next time
            raise _ServerRefused(f"HTTP {response.status_code} {response.reason_phrase}")
        progress.update(task, completed=offset)
        with partial.open(mode) as out:
            for chunk in response.iter_raw():
                out.write(chunk)
                progress.advance(task, len(chunk))


def _range_start(response: httpx.Response) -> int | None:
    """The first byte of a 206 reply, from `Content-Range: bytes START-END/TOTAL`."""
    unit, _, span = response.headers.get("content-range", "").partition(" ")
    start = span.partition("-")[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


def _verify(partial: Path, remote: RemoteFile, url: str) -> None:
    """Delete `partial` and raise FetchError naming both hashes unless it is exactly the published file."""
    found = sha256_of(partial)
    if found != remote.sha256:
        size = partial.stat().st_size
        partial.unlink()
        raise FetchError(
            f"{remote.name} from {url} has SHA-256 {found} ({size:,} bytes), but the published SHA-256 is"
            f" {remote.sha256} ({remote.size:,} bytes); the download was deleted: run the command again to retry"
        )


def local_copies(data_dir: Path | None) -> dict[str, Path | None]:
    """Each downloadable dataset -> the folder its files are found in (data_dir or its default ones), or None."""
    found: dict[str, Path | None] = {}
    for name in sorted(CATALOG):
        source = DATASETS.get(name)()
        try:
            found[name] = source.locate(data_dir) if isinstance(source, FileDatasetSource) else None
        except DatasetUnavailableError:
            found[name] = None
    return found
