"""Models (registry and built-ins: logreg, mlp, cnn) and their initialisers."""

from feles.models import cnn, linear  # noqa: F401  (importing registers the built-ins)
from feles.models.cnn import SmallCnn
from feles.models.init import INITIALIZERS, ModelInitializer, initialize_model
from feles.models.linear import LogisticRegression, MultilayerPerceptron
from feles.models.registry import MODELS, ModelFactory, build_model

__all__ = [
    "INITIALIZERS",
    "MODELS",
    "LogisticRegression",
    "ModelFactory",
    "ModelInitializer",
    "MultilayerPerceptron",
    "SmallCnn",
    "build_model",
    "initialize_model",
]
