"""The workers registered with the orchestrator, their secrets, and when each was last heard from."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass

#: Seconds without a request after which a registration is forgotten (the worker registers again on 404).
DEFAULT_EXPIRY_SECONDS = 600.0


@dataclass
class WorkerInfo:
    name: str
    registered_at: float
    last_seen: float
    secret_digest: bytes


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class WorkerRegistry:
    """Registered workers by id; thread-safe (the API's handlers and the metrics read it).

    Each registration gets a random secret of its own: only its holder can lease, heartbeat, post results or
    leave as that worker. Registrations not heard from for `expiry` seconds are forgotten.
    """

    def __init__(self, timeout: float = 90.0, expiry: float = DEFAULT_EXPIRY_SECONDS) -> None:
        #: Seconds without a request after which a worker no longer counts as live.
        self.timeout = timeout
        #: Seconds without a request after which a registration is dropped (at least `timeout`).
        self.expiry = max(expiry, timeout)
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerInfo] = {}

    def register(self, name: str) -> tuple[str, str]:
        """A new worker id (the name plus a random suffix: two pods may share a name) and its secret."""
        worker_id = f"{name}-{uuid.uuid4().hex[:8]}"
        secret = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            self._expire(now)
            self._workers[worker_id] = WorkerInfo(name, now, now, _digest(secret))
        return worker_id, secret

    def authenticate(self, worker_id: str, secret: str | None) -> bool:
        """Whether `secret` is the one `worker_id` got at registration (constant-time compare)."""
        if not secret:
            return False
        with self._lock:
            info = self._workers.get(worker_id)
            expected = info.secret_digest if info is not None else b"\0" * 32
        return secrets.compare_digest(_digest(secret), expected) and info is not None

    def touch(self, worker_id: str) -> bool:
        """Record that a worker is alive; False when it is unknown (it must register again)."""
        now = time.time()
        with self._lock:
            info = self._workers.get(worker_id)
            if info is None or info.last_seen < now - self.expiry:
                self._workers.pop(worker_id, None)
                return False
            info.last_seen = now
            return True

    def forget(self, worker_id: str) -> bool:
        """Remove a worker that leaves; False when it was unknown."""
        with self._lock:
            return self._workers.pop(worker_id, None) is not None

    def live(self) -> int:
        """Workers heard from within the timeout."""
        now = time.time()
        cutoff = now - self.timeout
        with self._lock:
            self._expire(now)
            return sum(1 for info in self._workers.values() if info.last_seen >= cutoff)

    def _expire(self, now: float) -> None:
        cutoff = now - self.expiry
        for worker_id in [key for key, info in self._workers.items() if info.last_seen < cutoff]:
            del self._workers[worker_id]

    def __len__(self) -> int:
        with self._lock:
            self._expire(time.time())
            return len(self._workers)

    def __contains__(self, worker_id: object) -> bool:
        with self._lock:
            return worker_id in self._workers
