"""FNV-1a, 32 bits: one scalar implementation and one vectorized over a column of strings.

FNV-1a is a streaming hash: ``h = 0x811c9dc5``; for every byte ``h = (h ^ byte) * 0x01000193
mod 2**32``. Hashing ``"{prefix}{id}"`` therefore starts each id from the state reached after
the prefix, which the vectorized version computes once.
"""

from __future__ import annotations

import numpy as np
import polars as pl

OFFSET_BASIS = 0x811C9DC5
PRIME = 0x01000193
_MASK = 0xFFFFFFFF


def fnv1a32(data: str | bytes, state: int = OFFSET_BASIS) -> int:
    """FNV-1a 32-bit hash of ``data`` (a ``str`` is hashed as its UTF-8 bytes)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    h = state
    for byte in raw:
        h = ((h ^ byte) * PRIME) & _MASK
    return h


def fnv1a32_series(ids: pl.Series, prefix: str = "") -> np.ndarray:
    """FNV-1a 32 of ``prefix + id`` for every id, as ``uint64`` values below 2**32.

    Loops over byte positions (the longest id's length), never over ids: the UTF-8 bytes are
    read straight from the Arrow buffers, ids are ordered by length once, and position ``j``
    updates the prefix of that order whose ids are longer than ``j``. Null ids hash as ``""``;
    callers mask them.
    """
    arr = ids.cast(pl.String).to_arrow(compat_level=pl.CompatLevel.oldest())
    n = len(arr)
    h = np.full(n, fnv1a32(prefix), dtype=np.uint64)
    if n == 0:
        return h
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    if buffers[2] is None or not lengths.any():
        return h
    data = np.frombuffer(buffers[2], dtype=np.uint8).astype(np.uint64)
    order = np.argsort(-lengths, kind="stable")
    sorted_lengths = lengths[order]
    sorted_starts = starts[order]
    state = h[order]
    prime = np.uint64(PRIME)
    mask = np.uint64(_MASK)
    # active[j] = how many ids are longer than j (lengths are sorted descending)
    active = np.searchsorted(-sorted_lengths, -np.arange(int(sorted_lengths[0])), side="left")
    for j, count in enumerate(active.tolist()):
        head = state[:count]
        np.bitwise_xor(head, data[sorted_starts[:count] + j], out=head)
        np.multiply(head, prime, out=head)
        np.bitwise_and(head, mask, out=head)
    h[order] = state
    return h
