"""Models (registry and built-ins: logreg, mlp, mlp_small, cnn, char_gru, char_lstm, regression_mlp, and the
original FELES's cnn_keras_tutorial, cnn_batchnorm and char_lstm_onehot) and their initialisers."""

from feles.models import char, cnn, linear, original, regression  # noqa: F401  (importing registers the built-ins)
from feles.models.char import CharRnn
from feles.models.cnn import SmallCnn
from feles.models.init import INITIALIZERS, ModelInitializer, initialize_model
from feles.models.linear import LogisticRegression, MultilayerPerceptron
from feles.models.registry import MODELS, ModelFactory, build_model
from feles.models.regression import RegressionPerceptron

__all__ = [
    "INITIALIZERS",
    "MODELS",
    "CharRnn",
    "LogisticRegression",
    "ModelFactory",
    "ModelInitializer",
    "MultilayerPerceptron",
    "RegressionPerceptron",
    "SmallCnn",
    "build_model",
    "initialize_model",
]
