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


# numpy's SeedSequence constants (O'Neill's seed_seq_fe, pool of 4 words), for the vectorised torch_seeds.
_POOL_SIZE = 4
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_MASK32 = 0xFFFFFFFF


def torch_seeds(seed: int, purpose: str, keys: tuple[int, ...], last: np.ndarray) -> np.ndarray:
    """torch_seed(seed, purpose, *keys, k) for every k in `last`, at once (int64 array).

    One SeedSequence per job cost ~10 us, most of a round's scheduling at 10,000 jobs; this runs
    SeedSequence's entropy mixing on whole arrays instead. Every value must fit in 32 bits.
    """
    last = np.atleast_1d(np.asarray(last, dtype=np.int64))
    words = [seed, _purpose_key(purpose), *keys]
    if any(not 0 <= word <= _MASK32 for word in words) or (last.size and not 0 <= last.min() <= last.max() <= _MASK32):
        raise ValueError("torch_seeds takes non-negative keys below 2**32")
    entropy = [np.full(last.shape, word, dtype=np.uint32) for word in words] + [last.astype(np.uint32)]
    pool = _mix_entropy(entropy)
    low, high = _generate_state_words(pool)
    return ((high.astype(np.uint64) << np.uint64(32) | low.astype(np.uint64)) >> np.uint64(1)).astype(np.int64)


class _HashMix:
    """SeedSequence's hashmix: its multiplier advances with every call, whatever the data."""

    def __init__(self) -> None:
        self.constant = _INIT_A

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = value ^ np.uint32(self.constant)
        self.constant = (self.constant * _MULT_A) & _MASK32
        value = value * np.uint32(self.constant)
        return value ^ (value >> np.uint32(16))


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result = np.uint32(_MIX_MULT_L) * x - np.uint32(_MIX_MULT_R) * y
    return result ^ (result >> np.uint32(16))


def _mix_entropy(entropy: list[np.ndarray]) -> list[np.ndarray]:
    hashmix = _HashMix()
    zero = np.zeros_like(entropy[0])
    pool = [hashmix(entropy[i] if i < len(entropy) else zero) for i in range(_POOL_SIZE)]
    for source in range(_POOL_SIZE):
        for target in range(_POOL_SIZE):
            if source != target:
                pool[target] = _mix(pool[target], hashmix(pool[source]))
    for word in entropy[_POOL_SIZE:]:
        for target in range(_POOL_SIZE):
            pool[target] = _mix(pool[target], hashmix(word))
    return pool


def _generate_state_words(pool: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The two 32-bit words of SeedSequence.generate_state(1, uint64): low, high."""
    constant, words = _INIT_B, []
    for value in pool[:2]:
        value = value ^ np.uint32(constant)
        constant = (constant * _MULT_B) & _MASK32
        value = value * np.uint32(constant)
        words.append(value ^ (value >> np.uint32(16)))
    return words[0], words[1]
