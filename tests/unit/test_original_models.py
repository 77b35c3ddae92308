"""The original FELES's Keras models rebuilt in torch: same layers, same parameter counts as Keras reports."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from feles.config import BUILTIN_NAMES
from feles.models import build_model
from feles.models.original import BiasInInputLstm


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def keras_lstm(inputs: int, units: int) -> int:
    """Keras's LSTM: kernel, recurrent kernel and one bias, for each of the four gates."""
    return 4 * (units * (inputs + units) + units)


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        # Keras summary of the original's cifar10.py / cifar100.py model: 896 + 18,496 + 36,928 + 65,600 + dense.
        (10, 122_570),
        (100, 128_420),
    ],
)
def test_the_cifar_cnn_has_the_keras_models_parameters(classes: int, expected: int) -> None:
    model = build_model("cnn_keras_tutorial", (3, 32, 32), classes)
    convolutions = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.padding) for m in convolutions] == [
        (3, 32, (3, 3), (0, 0)),
        (32, 64, (3, 3), (0, 0)),
        (64, 64, (3, 3), (0, 0)),
    ]
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears == [(4 * 4 * 64, 64), (64, classes)]
    assert parameters(model) == expected
    assert model(torch.zeros(5, 3, 32, 32)).shape == (5, classes)


def test_the_cifar_cnn_refuses_images_too_small_for_its_convolutions() -> None:
    with pytest.raises(ValueError, match="at least 18x18"):
        build_model("cnn_keras_tutorial", (1, 16, 16), 10)
    with pytest.raises(ValueError, match="channels, height, width"):
        build_model("cnn_keras_tutorial", (60,), 10)


@pytest.mark.parametrize("vocabulary", [96, 39])
def test_the_shakespeare_lstm_has_the_keras_models_parameters(vocabulary: int) -> None:
    model = build_model("char_lstm_onehot", (80,), vocabulary)
    keras = keras_lstm(vocabulary, 128) + keras_lstm(128, 128) + 128 * vocabulary + vocabulary
    assert parameters(model) == keras
    logits = model(torch.randint(0, vocabulary, (4, 80)))
    assert logits.shape == (4, vocabulary)


def test_the_lstm_with_one_bias_computes_a_torch_lstm_whose_second_bias_is_zero() -> None:
    """The constant-1 input column is exactly a bias: same outputs as nn.LSTM with bias_ih = it, bias_hh = 0."""
    torch.manual_seed(3)
    ours = BiasInInputLstm(7, 5)
    reference = nn.LSTM(7, 5, batch_first=True)
    with torch.no_grad():
        weight = ours.lstm.weight_ih_l0
        reference.weight_ih_l0.copy_(weight[:, :7])
        reference.bias_ih_l0.copy_(weight[:, 7])
        reference.bias_hh_l0.zero_()
        reference.weight_hh_l0.copy_(ours.lstm.weight_hh_l0)
    x = torch.randn(3, 6, 7)
    expected, _ = reference(x)
    torch.testing.assert_close(ours(x), expected)


def test_the_emnist_cnn_has_the_keras_models_parameters() -> None:
    model = build_model("cnn_batchnorm", (1, 28, 28), 62)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    buffers = sum(m.running_mean.numel() + m.running_var.numel() for m in norms)
    # Keras summary of the original's emnist.py model: 320 + 128 + 9,248 + 128 + 2,359,424 + 7,998; its batch
    # norms' 128 moving means and variances are buffers in torch.
    assert parameters(model) + buffers == 2_377_246
    assert [m.eps for m in norms] == [1e-3, 1e-3]
    model.eval()
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 62)


def test_the_original_models_are_built_in_names() -> None:
    assert {"cnn_keras_tutorial", "cnn_batchnorm", "char_lstm_onehot"} <= BUILTIN_NAMES["model"]
