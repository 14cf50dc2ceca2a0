"""Deterministic hashing for the simulator: the same numbers in any process, scalar or numpy.

`unit(key, n)` is a float in [0, 1) that depends only on (key, n). The scalar and the numpy
versions give bit-identical results (53-bit mantissa from splitmix64), so any quantity may be
computed either way.
"""

from __future__ import annotations

import hashlib

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_TO_UNIT = 2.0**-53

_U_GOLDEN = np.uint64(GOLDEN)
_U_M1 = np.uint64(_M1)
_U_M2 = np.uint64(_M2)
_U30, _U27, _U31, _U11 = (np.uint64(k) for k in (30, 27, 31, 11))


def stable_int(text: str) -> int:
    """A 64-bit integer from text (blake2b), identical across processes and hash seeds."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def mix64(x: int) -> int:
    """splitmix64 finaliser: a fast, well-distributed 64-bit integer hash."""
    x = ((x ^ (x >> 30)) * _M1) & MASK64
    x = ((x ^ (x >> 27)) * _M2) & MASK64
    return x ^ (x >> 31)


def unit(key: int, n: int) -> float:
    """A deterministic float in [0, 1) for (key, n)."""
    return (mix64((key + n * GOLDEN) & MASK64) >> 11) * _TO_UNIT


def hashes(key: int, n: np.ndarray) -> np.ndarray:
    """`mix64(key + n * GOLDEN)` for every element of the int64 array n (uint64 array)."""
    x = np.uint64(key & MASK64) + n.astype(np.uint64) * _U_GOLDEN
    x = (x ^ (x >> _U30)) * _U_M1
    x = (x ^ (x >> _U27)) * _U_M2
    return x ^ (x >> _U31)


def units(key: int, n: np.ndarray) -> np.ndarray:
    """`unit(key, n)` for every element of the int64 array n (float64 array)."""
    return (hashes(key, n) >> _U11).astype(np.float64) * _TO_UNIT


def subkey(key: int, salt: int) -> int:
    """A key for an independent stream of the same symbol (salt: a small constant)."""
    return mix64((key ^ (salt * GOLDEN)) & MASK64)
