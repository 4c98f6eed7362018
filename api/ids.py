"""Cheap unique ids for the hot path.

Same shape as ``engine.store.new_id`` (``prefix_<12 hex ms><8 hex>``, sorting by creation
time) but without a system-randomness syscall per id: the 8 hex digits are a per-process
random salt plus a counter, unique for 2**32 ids per millisecond within a process, and the
salt makes collisions across processes improbable.
"""

from __future__ import annotations

import itertools
import secrets
import time

_SALT = secrets.randbits(32)
_COUNTER = itertools.count()
_MASK = 0xFFFFFFFF


def new_id(prefix: str) -> str:
    return f"{prefix}_{int(time.time() * 1000):012x}{(_SALT + next(_COUNTER)) & _MASK:08x}"


def request_id() -> str:
    return f"{_SALT:08x}{int(time.time() * 1000):012x}{next(_COUNTER) & _MASK:08x}"
