"""The workers registered with the orchestrator and when each was last heard from."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass


@dataclass
class WorkerInfo:
    name: str
    registered_at: float
    last_seen: float


class WorkerRegistry:
    """Registered workers by id; thread-safe (the API's handlers and the metrics read it)."""

    def __init__(self, timeout: float = 90.0) -> None:
        #: Seconds without a request after which a worker no longer counts as live.
        self.timeout = timeout
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerInfo] = {}

    def register(self, name: str) -> str:
        """A new worker id (the name plus a random suffix: two pods may share a name after a restart)."""
        worker_id = f"{name}-{uuid.uuid4().hex[:8]}"
        now = time.time()
        with self._lock:
            self._workers[worker_id] = WorkerInfo(name, now, now)
        return worker_id

    def touch(self, worker_id: str) -> bool:
        """Record that a worker is alive; False when it is unknown (it must register again)."""
        with self._lock:
            info = self._workers.get(worker_id)
            if info is None:
                return False
            info.last_seen = time.time()
            return True

    def forget(self, worker_id: str) -> bool:
        """Remove a worker that leaves; False when it was unknown."""
        with self._lock:
            return self._workers.pop(worker_id, None) is not None

    def live(self) -> int:
        """Workers heard from within the timeout."""
        cutoff = time.time() - self.timeout
        with self._lock:
            return sum(1 for info in self._workers.values() if info.last_seen >= cutoff)

    def __len__(self) -> int:
        with self._lock:
            return len(self._workers)

    def __contains__(self, worker_id: object) -> bool:
        with self._lock:
            return worker_id in self._workers
