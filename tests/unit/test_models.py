"""Models: logits of the right shape for every dataset, seeded initialisation, plug-ins by import path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from feles.models import INITIALIZERS, MODELS, build_model, initialize_model
from feles.registry import UnknownPluginError, plugin

SHAPES = {"fashion_mnist": (1, 28, 28), "digits": (1, 8, 8), "synthetic": (60,)}
CASES = [(model, dataset) for model in ("logreg", "mlp", "mlp_small", "cnn") for dataset in SHAPES]
CASES.remove(("cnn", "synthetic"))  # a CNN needs images


@pytest.mark.parametrize(("model_name", "dataset"), CASES)
def test_models_emit_one_logit_per_class(model_name: str, dataset: str) -> None:
    shape = SHAPES[dataset]
    model = build_model(model_name, shape, 10)
    assert model(torch.randn(4, *shape)).shape == (4, 10)


def test_cnn_is_small() -> None:
    count = sum(p.numel() for p in build_model("cnn", (1, 28, 28), 10).parameters())
    assert 100_000 <= count <= 250_000


def test_mlp_is_the_2nn() -> None:
    linears = [m for m in build_model("mlp", (1, 28, 28), 10).modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 200), (200, 200), (200, 10)]


def test_mlp_small_is_the_original_feless_mnist_model() -> None:
    model = build_model("mlp_small", (1, 28, 28), 10)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 128), (128, 10)]
    assert sum(p.numel() for p in model.parameters()) == 101_770


def test_cnn_rejects_non_images() -> None:
    with pytest.raises(ValueError, match="channels, height, width"):
        build_model("cnn", (60,), 10)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("initializer", ["default", "xavier_uniform", "kaiming_uniform"])
def test_same_seed_same_weights_whatever_the_model_state(initializer: str) -> None:
    torch.manual_seed(1)
    first = build_model("cnn", (1, 8, 8), 10)
    torch.manual_seed(2)
    second = build_model("cnn", (1, 8, 8), 10)
    initialize_model(first, initializer, seed=42)
    initialize_model(second, initializer, seed=42)
    assert same(weights(first), weights(second))
    initialize_model(second, initializer, seed=43)
    assert not same(weights(first), weights(second))


def test_default_is_torchs_own_initialisation() -> None:
    torch.manual_seed(7)
    built = build_model("mlp", (1, 8, 8), 10)
    model = build_model("mlp", (1, 8, 8), 10)
    initialize_model(model, "default", seed=7)
    assert same(weights(built), weights(model))


def test_initialisation_leaves_the_global_rng_untouched() -> None:
    model = build_model("mlp", (1, 28, 28), 10)
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    initialize_model(model, "xavier_uniform", seed=9)
    initialize_model(model, "default", seed=9)
    assert torch.equal(torch.rand(5), expected)


@pytest.mark.parametrize("initializer", ["xavier_uniform", "kaiming_uniform", "zeros"])
def test_non_default_initializers_zero_the_biases(initializer: str) -> None:
    model = build_model("cnn", (1, 8, 8), 10)
    initialize_model(model, initializer, seed=0)
    for name, tensor in model.named_parameters():
        if name.endswith("bias") or initializer == "zeros":
            assert torch.count_nonzero(tensor) == 0, name
        else:
            assert torch.count_nonzero(tensor) == tensor.numel(), name


def test_xavier_bounds_follow_the_fan() -> None:
    model = build_model("logreg", (60,), 10)
    initialize_model(model, "xavier_uniform", seed=0)
    bound = (6 / (60 + 10)) ** 0.5
    weight = model.state_dict()["linear.weight"]
    assert weight.abs().max().item() <= bound
    assert weight.abs().max().item() > 0.9 * bound


def test_unknown_initializer_names_the_known_ones() -> None:
    with pytest.raises(UnknownPluginError, match="kaiming_uniform"):
        initialize_model(build_model("logreg", (4,), 2), "orthogonal", seed=0)


@plugin("model")
def tiny_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A user's model factory plugged in by import path."""
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[-1], num_classes, bias=False))


@plugin("initializer")
def ones(model: nn.Module) -> None:
    """A user's initializer plugged in by import path."""
    for parameter in model.parameters():
        nn.init.ones_(parameter)


def test_model_and_initializer_plug_in_by_import_path() -> None:
    model = build_model(f"{__name__}:tiny_model", (3,), 2)
    initialize_model(model, f"{__name__}:ones", seed=0)
    assert model(torch.ones(1, 3)).tolist() == [[3.0, 3.0]]
    assert {"logreg", "mlp", "cnn"} <= set(MODELS.names())
    assert {"default", "xavier_uniform", "kaiming_uniform", "zeros"} <= set(INITIALIZERS.names())
