"""The shipped download catalog: every dataset it names exists, every file has https URLs and a SHA-256."""

from __future__ import annotations

import re

import pytest

from feles.data import DATASETS
from feles.data.catalog import CATALOG, UnknownDatasetError, catalog_entry
from feles.data.dataset import FileDatasetSource


def test_the_catalog_covers_the_file_datasets() -> None:
    assert set(CATALOG) == {"mnist", "fashion_mnist", "emnist", "cifar10", "cifar100"}
    for name, entry in CATALOG.items():
        assert entry.dataset == name
        assert issubclass(DATASETS.get(name), FileDatasetSource)
        assert entry.files and entry.homepage.startswith("http")


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_file_has_https_urls_a_sha256_and_a_size(name: str) -> None:
    names = [remote.name for remote in CATALOG[name].files]
    assert len(set(names)) == len(names)
    for remote in CATALOG[name].files:
        assert remote.urls and all(url.startswith("https://") for url in remote.urls)
        assert all(url.rsplit("/", 1)[1] == remote.name for url in remote.urls)
        assert re.fullmatch(r"[0-9a-f]{64}", remote.sha256), remote.sha256
        assert remote.size > 0 and "/" not in remote.name


def test_every_hash_is_distinct() -> None:
    hashes = [remote.sha256 for entry in CATALOG.values() for remote in entry.files]
    assert len(set(hashes)) == len(hashes)


def test_an_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(UnknownDatasetError, match=r"'cifar'.*knows: cifar10, cifar100, emnist, fashion_mnist, mnist"):
        catalog_entry("cifar")
