"""RSA keys made ahead of need, on a background thread, while apply starts up.

Key generation dominates `apply` and runs without the GIL. While the main thread
imports modules, reads the profiles and plans (a third of a second, on one core), the
other core would idle; the pool has it make the first keys instead. apply's workers take
a pooled key when one of the right size is ready and make their own otherwise.

Keys the run does not use stay in memory and are dropped with it: nothing is written,
nothing is reused across runs. The cost, when there turns out to be nothing to create,
is the CPU of the few keys made meanwhile.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

_POOL: KeyPool | None = None


class KeyPool:
    """Makes keys of one size until told how many are needed, or to stop."""

    def __init__(self, bits: int = 2048, ahead: int = 16) -> None:
        self.bits = bits
        self._keys: queue.Queue[rsa.RSAPrivateKey] = queue.Queue(maxsize=ahead)
        # Keys the pool may still start: `ahead` until apply says how many it needs;
        # every key a worker makes itself comes off it, so no key is made twice over.
        self._budget = ahead
        self._started = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="bfprov-keypool", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        while not self._stop.is_set():
            with self._lock:
                if self._budget <= 0:
                    return
                self._budget -= 1
                self._started += 1
            key = rsa.generate_private_key(public_exponent=65537, key_size=self.bits)
            try:
                self._keys.put(key, timeout=5)
            except queue.Full:
                return

    def need(self, count: int) -> None:
        """apply now knows how many keys of this size it needs: make no more than that."""
        with self._lock:
            self._budget = count - self._started
        if count <= self._started:
            self._stop.set()

    def take(self, bits: int) -> rsa.RSAPrivateKey | None:
        """A ready key of `bits`, or None (the caller makes its own)."""
        if bits != self.bits:
            return None
        try:
            return self._keys.get_nowait()
        except queue.Empty:
            with self._lock:
                self._budget -= 1  # the caller makes this one
            return None

    def close(self) -> None:
        self._stop.set()
        while True:
            try:
                self._keys.get_nowait()
            except queue.Empty:
                return


def start(bits: int = 2048) -> None:
    """Start the process's pool (apply calls this first thing)."""
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
