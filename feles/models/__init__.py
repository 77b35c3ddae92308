"""Models (registry and built-ins: logreg, mlp, mlp_small, cnn, char_gru, char_lstm, and the original FELES's
cnn_keras_tutorial and char_lstm_onehot) and their initialisers."""

from feles.models import char, cnn, linear, original  # noqa: F401  (importing registers the built-ins)
from feles.models.char import CharRnn
from feles.models.cnn import SmallCnn
from feles.models.init import INITIALIZERS, ModelInitializer, initialize_model
from feles.models.linear import LogisticRegression, MultilayerPerceptron
from feles.models.registry import MODELS, ModelFactory, build_model

__all__ = [
    "INITIALIZERS",
    "MODELS",
    "CharRnn",
    "LogisticRegression",
    "ModelFactory",
    "ModelInitializer",
    "MultilayerPerceptron",
    "SmallCnn",
    "build_model",
    "initialize_model",
]
