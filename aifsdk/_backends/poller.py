"""The scheduler's queue, asked gently: one :class:`Poller` per Slurm cluster in a process.

Every wait shares it: one ``squeue`` call for all of the user's jobs, at most one per second
(the wait loop backs off to one every 10 s), however many jobs or threads wait; ``sacct`` only for
jobs slurmctld has forgotten, once per snapshot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .._scheduler import TERMINAL_STATES, Slurm, default_slurm

SCHEDULER_POLL_MIN_S = 1.0
SCHEDULER_POLL_MAX_S = 10.0
MISS_REFRESH_S = 0.25  # a job missing from a snapshot (just submitted) may refresh it this often


class Poller:
    """The process-wide view of one cluster's queue, refreshed by one squeue call at a time."""

    def __init__(self, slurm: Callable[[], Slurm] = default_slurm) -> None:
        self._slurm = slurm
        self._lock = threading.Lock()
        self._queue: dict[str, tuple[str, str]] = {}
        self._taken = float("-inf")  # monotonic time of the last squeue
        self._accounted: dict[str, str] = {}  # ended jobs slurmctld forgot, from sacct (final)
        self._checked: set[str] = set()  # missing from the current snapshot, accounting already asked

    def states(self, job_ids: list[str], max_age: float = SCHEDULER_POLL_MIN_S) -> dict[str, tuple[str, str]]:
        """(state, reason) of each job, from a queue snapshot at most ``max_age`` old (never
        younger than one second between refreshes). UNKNOWN where neither slurmctld nor accounting
        knows the job (the caller then reads its files)."""
        max_age = max(max_age, SCHEDULER_POLL_MIN_S)
        with self._lock:
            now = time.monotonic()
            if now - self._taken >= max_age:
                self._refresh()
            missing = [j for j in job_ids if j not in self._queue and j not in self._accounted and j not in self._checked]
            if missing and time.monotonic() - self._taken >= MISS_REFRESH_S:
                self._refresh()  # submitted after the last snapshot?
                missing = [j for j in missing if j not in self._queue]
            if missing:  # forgotten by slurmctld: accounting, once per snapshot
                found = self._slurm().accounting(missing)
                self._accounted.update({j: s for j, s in found.items() if s in TERMINAL_STATES})
                self._checked.update(missing)
            out = {}
            for j in job_ids:
                if j in self._queue:
                    out[j] = self._queue[j]
                else:
                    out[j] = (self._accounted.get(j, "UNKNOWN"), "")
            return out

    def _refresh(self) -> None:
        self._queue = self._slurm().queue()
        self._taken = time.monotonic()
        self._checked = set()

    def forget(self) -> None:
        """Drop every snapshot (the next call asks the scheduler)."""
        with self._lock:
            self._queue, self._taken, self._accounted, self._checked = {}, float("-inf"), {}, set()


_POLLER = Poller()


def poller() -> Poller:
    """The poller of this machine's Slurm cluster."""
    return _POLLER
