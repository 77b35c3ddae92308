"""Derivation of independent random streams from (seed, repetition, round, device, purpose)."""

from __future__ import annotations

import zlib

import numpy as np


def _purpose_key(purpose: str) -> int:
    # crc32 is stable across processes and Python versions, unlike hash().
    return zlib.crc32(purpose.encode())


def seed_sequence(seed: int, purpose: str, *keys: int) -> np.random.SeedSequence:
    """A SeedSequence unique to the seed, the purpose and the integer keys."""
    return np.random.SeedSequence([seed, _purpose_key(purpose), *keys])


def numpy_rng(seed: int, purpose: str, *keys: int) -> np.random.Generator:
    """A numpy Generator for one purpose, e.g. numpy_rng(seed, "availability", rep, round)."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, purpose, *keys)))


def torch_seed(seed: int, purpose: str, *keys: int) -> int:
    """A 63-bit integer seed for torch generators derived like numpy_rng."""
    return int(seed_sequence(seed, purpose, *keys).generate_state(1, np.uint64)[0] >> np.uint64(1))
