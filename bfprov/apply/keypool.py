"""RSA keys for apply, made on threads of their own: one per core, never waiting on disk.

Key generation is nearly all of apply's work, and runs without the GIL. So the keys are
not made by the workers that sign and write (a worker waiting for an fsync would leave
its core idle) but here:

- `start()`, first thing in a `bfprov apply` process, has one thread make 2048-bit keys
  while the main thread imports, reads the profiles and plans (a third of a second on
  one core; the other core would idle). At most `ahead` keys are made on speculation.
- `need(sizes)`: apply now knows exactly which keys it needs, in the order its workers
  will ask for them. The pool makes exactly those (keys already made count), on one
  thread per core.
- `take(bits)`: a worker waits for a key of that size; None when the pool will make no
  such key (the worker then makes its own).

Keys stay in memory and go with the process: nothing is written or reused across runs.
When there turns out to be nothing to create, the cost is the few keys made meanwhile.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cryptography.hazmat.primitives.asymmetric import rsa

_POOL: KeyPool | None = None


class KeyPool:
    """Makes RSA keys on background threads, as many as apply needs and no more."""

    def __init__(self, bits: int = 2048, ahead: int = 16, threads: int | None = None) -> None:
        self._threads = threads or os.cpu_count() or 1
        self._cond = threading.Condition()
        self._todo: deque[int] = deque([bits] * ahead)  # sizes still to start, in order
        self._ready: dict[int, deque[rsa.RSAPrivateKey]] = {}
        self._queued: Counter[int] = Counter(self._todo)  # the sizes in _todo
        self._making: Counter[int] = Counter()  # started, not finished, by size
        self._makers = 0  # threads making keys (or about to)
        self._closed = False
        # Imported here, not on the thread: two threads importing at once take turns
        # with the GIL, and the thread would start its first key later.
        from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: F401

        self._spawn(1)  # on speculation, one thread: the main thread has the other core

    # -- the making threads ----------------------------------------------------------------
    def _spawn(self, count: int) -> None:
        with self._cond:
            more = count - self._makers
            self._makers += max(0, more)
        for _ in range(more):
            threading.Thread(target=self._make, name="bfprov-keypool", daemon=True).start()

    def _make(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        # Every change below happens under the lock in one step with the decision it
        # follows, so `take` and `_spawn` never see a thread about to leave as a maker,
        # nor a key as neither in the making nor ready.
        while True:
            with self._cond:
                if self._closed or not self._todo:
                    self._makers -= 1
                    self._cond.notify_all()
                    return
                bits = self._todo.popleft()
                self._queued[bits] -= 1
                self._making[bits] += 1
            try:
                key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
            except Exception:  # the worker that needed it makes its own, and reports
                with self._cond:
                    self._making[bits] -= 1
                    self._makers -= 1
                    self._cond.notify_all()
                return
            with self._cond:
                self._making[bits] -= 1
                self._ready.setdefault(bits, deque()).append(key)
                self._cond.notify_all()

    # -- apply's side ----------------------------------------------------------------------
    def need(self, sizes: Iterable[int]) -> None:
        """Exactly these keys (one size per key, in the order they will be taken)."""
        sizes = list(sizes)
        with self._cond:
            have = Counter({b: len(keys) for b, keys in self._ready.items()}) + self._making
            todo: deque[int] = deque()
            for bits in sizes:
                if have[bits] > 0:
                    have[bits] -= 1
                else:
                    todo.append(bits)
            self._todo = todo
            self._queued = Counter(todo)
            self._cond.notify_all()
        if todo:
            self._spawn(min(self._threads, len(todo)))

    def take(self, bits: int) -> rsa.RSAPrivateKey | None:
        """A key of `bits`, once it is made; None if the pool is not making one."""
        with self._cond:
            while True:
                ready = self._ready.get(bits)
                if ready:
                    return ready.popleft()
                coming = self._making[bits] or (self._queued[bits] and self._makers)
                if self._closed or not coming:
                    return None
                self._cond.wait()

    def makers(self) -> int:
        """Threads making keys now."""
        with self._cond:
            return self._makers

    def close(self) -> None:
        """Start no further key; drop the ready ones."""
        with self._cond:
            self._closed = True
            self._todo.clear()
            self._queued.clear()
            self._ready.clear()
            self._cond.notify_all()


def wanted_by(args: list[str]) -> bool:
    """Whether a command line is `bfprov [global options] apply ...` (not its --help)."""
    if "--help" in args or "--version" in args:
        return False
    return next((arg for arg in args if not arg.startswith("-")), None) == "apply"


def start(bits: int = 2048) -> None:
    """Start the process's pool (the `bfprov apply` entry point calls this first)."""
    global _POOL
    if _POOL is None:
        _POOL = KeyPool(bits)


def pool() -> KeyPool | None:
    return _POOL


def stop() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.close()
        _POOL = None
