"""The one protocol every benchmark of the suite implements, so that the harness names none of them.

A suite (``configs/suite/*.yaml``) lists its benchmarks; each entry names one with ``_target_``
and its other keys are the benchmark's keyword arguments (``by_device.gpu`` / ``by_device.cpu``
merged over them for the device class at hand). The target is a :class:`Benchmark`, which says:

- ``run(ctx, **kwargs) -> list[Row]``: its steps, measured through ``ctx`` (:class:`benchmarks._measure.Context`);
- ``configure(kwargs, config) -> kwargs``: its config, completed from the composed config (for
  example the ``workload`` group), before anything is checked;
- ``check(kwargs) -> [problem, ...]``: what is wrong with its arguments, before anything runs
  (the harness itself checks ``dtype``/``dtypes`` values, and the ``site`` of a benchmark that
  submits jobs);
- ``steps(kwargs, device) -> int``: how many progress steps it takes;
- ``submits_jobs``: it submits jobs through aifsdk, so it runs once per suite run (not once per
  round) and its ``site`` is the ``site=`` choice when one is made;
- ``notes(row) -> [text, ...]``: the table's notes for one of its written rows;
- ``finish(document, folder) -> text``: what it writes into the run's folder at the end (the
  text is printed after the table; "" when it writes nothing).

A target may also be a plain function ``fn(ctx, **kwargs) -> list[Row]``: it gets the defaults
(one step, nothing to check, nothing written at the end).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._device import DeviceInfo
from .results import Row

Kwargs = dict[str, Any]


def _same(kwargs: Kwargs, config: Kwargs) -> Kwargs:
    return kwargs


def _nothing_wrong(kwargs: Kwargs) -> list[str]:
    return []


def _one_step(kwargs: Kwargs, device: DeviceInfo) -> int:
    return 1


def _no_notes(row: Kwargs) -> list[str]:
    return []


def _writes_nothing(document: Kwargs, folder: Path) -> str:
    return ""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark as the harness sees it (see the module docstring). Calling it runs it."""

    name: str
    run: Callable[..., list[Row]]
    configure: Callable[[Kwargs, Kwargs], Kwargs] = _same
    check: Callable[[Kwargs], list[str]] = _nothing_wrong
    steps: Callable[[Kwargs, DeviceInfo], int] = _one_step
    submits_jobs: bool = False
    notes: Callable[[Kwargs], list[str]] = _no_notes
    finish: Callable[[Kwargs, Path], str] = _writes_nothing

    def __call__(self, ctx: Any, **kwargs: Any) -> list[Row]:
        return self.run(ctx, **kwargs)


def benchmark(name: str, **hooks: Any) -> Callable[[Callable[..., list[Row]]], Benchmark]:
    """Decorator: the function is the benchmark's ``run``; ``name`` is the ``benchmark`` of its
    rows; ``hooks`` are the other fields of :class:`Benchmark`."""

    def wrap(run: Callable[..., list[Row]]) -> Benchmark:
        bench = Benchmark(name, run, **hooks)
        object.__setattr__(bench, "__doc__", run.__doc__)
        object.__setattr__(bench, "__wrapped__", run)  # inspect.signature(bench) is run's
        return bench

    return wrap


def load_benchmark(target: str) -> Benchmark:
    """The benchmark a suite entry's ``_target_`` names (a plain function gets the defaults)."""
    from hydra.utils import get_object

    found = get_object(target)
    if isinstance(found, Benchmark):
        return found
    if callable(found):
        return Benchmark(getattr(found, "__name__", target.rsplit(".", 1)[-1]), found)
    raise TypeError(f"{target} is a {type(found).__name__}, not a benchmark (a Benchmark or a function ctx, **kwargs -> rows)")


def benchmarks_of(document: Kwargs) -> dict[str, Benchmark]:
    """The benchmarks a results document's suite ran, by the ``benchmark`` name of their rows
    (targets that no longer import are left out: their rows get no benchmark-specific notes)."""
    entries = ((document.get("config") or {}).get("suite") or {}).get("benchmarks") or {}
    found: dict[str, Benchmark] = {}
    for entry in entries.values():
        try:
            bench = load_benchmark(str(entry.get("_target_")))
        except Exception:  # noqa: BLE001 - an old run may name a benchmark this version lacks
            continue
        found[bench.name] = bench
    return found
