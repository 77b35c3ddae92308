"""Global model versions, encoded once and served to every worker."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import torch

from feles.protocol import UpdateReference, encode_tensors

#: Model versions kept for download: the current one and the one before (slow workers still on it).
KEPT_MODEL_VERSIONS = 2


class ModelStore:
    """Global model versions as safetensors bytes, encoded once and served to every worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes: dict[int, bytes] = {}
        self._tensors: dict[str, torch.Tensor] = {}
        self._reference: UpdateReference | None = None
        self.version = -1

    def publish(self, weights: Mapping[str, torch.Tensor]) -> int:
        """Store weights as the next version and return its number."""
        encoded = encode_tensors(weights)
        with self._lock:
            self.version += 1
            self._bytes[self.version] = encoded
            self._tensors = {name: tensor.detach().clone() for name, tensor in weights.items()}
            self._reference = None
            for old in [v for v in self._bytes if v <= self.version - KEPT_MODEL_VERSIONS]:
                del self._bytes[old]
            return self.version

    def restore(self, weights: Mapping[str, torch.Tensor], version: int) -> None:
        """Publish checkpointed weights under the version they had."""
        with self._lock:
            self.version = version - 1
        self.publish(weights)

    def continue_after(self, version: int) -> None:
        """Number the next published version `version + 1`: a run resumed at a repetition boundary keeps counting
        where its checkpoint stopped, so a version number never names two models of one run."""
        with self._lock:
            self.version = max(self.version, version)

    def encoded_size(self) -> int:
        """Bytes of the current version's safetensors encoding (0 before the first one)."""
        with self._lock:
            current = self._bytes.get(self.version)
            return len(current) if current is not None else 0

    def get(self, version: int) -> bytes | None:
        with self._lock:
            return self._bytes.get(version)

    def current(self) -> dict[str, torch.Tensor]:
        with self._lock:
            return dict(self._tensors)

    def reference(self) -> UpdateReference:
        """The current version prepared for checking fit updates, built once per version."""
        with self._lock:
            if self._reference is None:
                self._reference = UpdateReference.of(self._tensors)
            return self._reference
