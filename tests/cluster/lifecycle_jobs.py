"""Functions submitted by tests/cluster/test_lifecycle.py (importable on the nodes by name)."""

from __future__ import annotations

import time


def stamp(label: str) -> tuple[str, float, float]:
    """When this job started and ended (wall clock, shared by the nodes of the local cluster)."""
    start = time.time()
    time.sleep(1)
    return label, start, time.time()
