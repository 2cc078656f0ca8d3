"""The progress of packed maps while they are waited on: a tqdm bar on a terminal, else one line
per change (at most one every ``LINE_EVERY_S``), so that a batch log stays readable."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

LINE_EVERY_S = 5.0
BAR_EVERY_S = 0.2


class Progress:
    def __init__(self, sweeps: list[Any], stream: IO[str] | None = None) -> None:
        self.sweeps = sweeps
        self.stream = stream or sys.stderr
        self.total = sum(s.n for s in sweeps)
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last: tuple[int, ...] | None = None
        self._shown = float("-inf")
        self._bar: Any = None
        if self.tty:
            from tqdm import tqdm

            label = sweeps[0].id if len(sweeps) == 1 else f"{len(sweeps)} maps"
            self._bar = tqdm(total=self.total, unit="item", desc=label, file=self.stream, dynamic_ncols=True, leave=True)

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "running": 0, "pending": 0, "failed": 0, "cancelled": 0}
        for s in self.sweeps:
            for key, value in s.counts().items():
                out[key] += value
        return out

    def text(self, c: dict[str, int]) -> str:
        parts = [f"{c['done']} done", f"{c['running']} running", f"{c['pending']} pending", f"{c['failed']} failed"]
        if c["cancelled"]:
            parts.append(f"{c['cancelled']} cancelled")
        return ", ".join(parts)

    def eta(self, c: dict[str, int]) -> str:
        ended = c["done"] + c["failed"]
        left = self.total - ended - c["cancelled"]
        elapsed = time.monotonic() - self.started
        if not ended or not left:
            return "-"
        seconds = int(elapsed / ended * left)
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"

    def update(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._shown < (BAR_EVERY_S if self.tty else LINE_EVERY_S):
            return
        c = self.counts()
        key = tuple(c.values())
        if key == self._last and not (self.tty and not final):
            return
        self._last, self._shown = key, now
        if self._bar is not None:
            self._bar.n = c["done"] + c["failed"] + c["cancelled"]
            self._bar.set_postfix_str(self.text(c), refresh=False)
            self._bar.refresh()
        else:
            ids = ", ".join(s.id for s in self.sweeps)
            print(f"aifsdk: {ids}: {c['done'] + c['failed']}/{self.total} items ended ({self.text(c)}), "
                  f"elapsed {int(now - self.started)} s, ETA {self.eta(c)}", file=self.stream, flush=True)

    def close(self) -> None:
        self.update(final=True)
        if self._bar is not None:
            self._bar.close()
