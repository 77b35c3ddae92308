"""Where each downloadable dataset's files come from, and the SHA-256 every download must match.

The hashes are the published ones of TensorFlow Datasets' checksum files (repository tensorflow/datasets,
folder tensorflow_datasets/url_checksums/, one file per dataset listing url, size and sha256); each entry below
names its file and the commit it was read at.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name in the dataset's folder, the URLs that serve it (tried in order)."""

    name: str
    urls: tuple[str, ...]
    sha256: str
    size: int  # bytes


@dataclass(frozen=True)
class CatalogEntry:
    """The files `feles data fetch NAME` downloads for dataset NAME."""

    dataset: str
    files: tuple[RemoteFile, ...]
    homepage: str


class UnknownDatasetError(LookupError):
    """A name `feles data fetch` cannot download; the message lists the ones it can."""


def _mnist_file(name: str, sha256: str, size: int) -> RemoteFile:
    # The torchvision mirror first (LeCun's own site no longer serves the files), then the mirror TFDS hashed.
    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
    return RemoteFile(name, tuple(mirror + name for mirror in mirrors), sha256, size)


def _fashion_file(name: str, sha256: str, size: int) -> RemoteFile:
    # The authors' GitHub copies are the same bytes as their S3 site (checked for the two label files), which
    # serves plain http only.
    url = f"https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/{name}"
    return RemoteFile(name, (url,), sha256, size)


CATALOG: dict[str, CatalogEntry] = {
    entry.dataset: entry
    for entry in (
        # tensorflow_datasets/url_checksums/mnist.txt at commit 31f1255e57e519a6c004f0b097a2f5cfcf0dde7d
        CatalogEntry(
            "mnist",
            (
                _mnist_file(
                    "train-images-idx3-ubyte.gz",
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    9_912_422,
                ),
                _mnist_file(
                    "train-labels-idx1-ubyte.gz",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    28_881,
                ),
                _mnist_file(
                    "t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    1_648_877,
                ),
                _mnist_file(
                    "t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                    4_542,
                ),
            ),
            "http://yann.lecun.com/exdb/mnist/",
        ),
        # tensorflow_datasets/url_checksums/fashion_mnist.txt at commit 333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5
        CatalogEntry(
            "fashion_mnist",
            (
                _fashion_file(
                    "train-images-idx3-ubyte.gz",
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                    26_421_880,
                ),
                _fashion_file(
                    "train-labels-idx1-ubyte.gz",
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                    29_515,
                ),
                _fashion_file(
                    "t10k-images-idx3-ubyte.gz",
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                    4_422_102,
                ),
                _fashion_file(
                    "t10k-labels-idx1-ubyte.gz",
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                    5_148,
                ),
            ),
            "https://github.com/zalandoresearch/fashion-mnist",
        ),
        # tensorflow_datasets/url_checksums/emnist.txt at commit 333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5 (it names
        # www.itl.nist.gov/iaui/vip/cs_links/EMNIST/gzip.zip, which NIST now serves from biometrics.nist.gov).
        CatalogEntry(
            "emnist",
            (
                RemoteFile(
                    "gzip.zip",
                    (
                        "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
                        "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/gzip.zip",
                    ),
                    "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e",
                    561_753_746,
                ),
            ),
            "https://www.nist.gov/itl/products-and-services/emnist-dataset",
        ),
        # tensorflow_datasets/url_checksums/cifar10.txt at commit 333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5
        CatalogEntry(
            "cifar10",
            (
                RemoteFile(
                    "cifar-10-binary.tar.gz",
                    ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
                    "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                    170_052_171,
                ),
            ),
            "https://www.cs.toronto.edu/~kriz/cifar.html",
        ),
        # tensorflow_datasets/url_checksums/cifar100.txt at commit 333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5
        CatalogEntry(
            "cifar100",
            (
                RemoteFile(
                    "cifar-100-binary.tar.gz",
                    ("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",),
                    "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
                    168_513_733,
                ),
            ),
            "https://www.cs.toronto.edu/~kriz/cifar.html",
        ),
    )
}


def catalog_entry(name: str) -> CatalogEntry:
    """The entry of dataset `name`; UnknownDatasetError listing the downloadable datasets otherwise."""
    if name not in CATALOG:
        raise UnknownDatasetError(
            f"no download known for dataset {name!r}; feles data fetch knows: {', '.join(sorted(CATALOG))}"
        )
    return CATALOG[name]
