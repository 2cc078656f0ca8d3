"""`python -m benchmarks` end to end in a subprocess, with tiny overrides (a few seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
TINY = ["timing.min_samples=2", "timing.max_samples=2", "timing.min_time_s=0", "timing.warmup_iters=1", "timing.flush_cache=false",
        "threads=1", "telemetry_interval_s=0.05", "rounds=1"]


def _run(tmp_path: Path, *args: str, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks", *flags, f"results_dir={tmp_path / 'results'}", *TINY, *args],
                          cwd=REPO, capture_output=True, text=True, timeout=240)


def test_quick_suite_end_to_end(tmp_path: Path) -> None:
    run = _run(tmp_path, "suite.benchmarks.matmul.m_range=[32,64,32]", "suite.benchmarks.matmul.n_range=[64]",
               "suite.benchmarks.matmul.k_range=[64]", "suite.benchmarks.membw.size_mb=2", "suite.benchmarks.workloads.names=[sar]",
               "workload=sar", "workload.batch_size=2", "workload.frame_length=128", "rounds=2")
    assert run.returncode == 0, run.stderr
    folders = list((tmp_path / "results").iterdir())
    assert len(folders) == 1
    doc = json.loads((folders[0] / "results.json").read_text())
    cases = [(r["benchmark"], r["case"]) for r in doc["rows"]]
    assert cases == [("matmul", "fp32 32x64x64"), ("matmul", "fp32 64x64x64"), ("matmul", "fp32 best"), ("membw", "copy 2MiB"),
                     ("membw", "triad 2MiB"), ("hostcopy", "skipped"), ("workload", "sar fp32")]
    assert doc["provenance"]["torch_threads"] == 1 and "workload.batch_size=2" in doc["provenance"]["overrides"]
    assert doc["rows"][-1]["params"]["batch_size"] == 2 and doc["rows"][-1]["params"]["frame_length"] == 128
    assert len(pd.read_parquet(folders[0] / "results.parquet")) == 7
    assert "| matmul | fp32 best |" in run.stdout and f"results: {folders[0]}" in run.stdout
    # progress: 2 shapes, 2 kernels, 1 skip, 1 workload, in each of 2 rounds
    assert "12/12 workload sar fp32 (0 left after this)" in run.stderr
    # each figure pools its 2 samples from each round; the best shape is chosen from the pooled rows
    measured = [r for r in doc["rows"] if "stats" in r]
    assert all(r["stats"]["n"] == 4 and len(r["extra"]["round_medians"]) == 2 for r in measured)
    best = doc["rows"][2]
    assert best["stats"]["median"] == max(r["stats"]["median"] for r in doc["rows"][:2])


def test_multirun_sweeps_into_separate_runs(tmp_path: Path) -> None:
    run = _run(tmp_path, "suite=security", "workload.batch_size=1,2", "workload.seq_len=16",
               "suite.benchmarks.matmul.m_range=[32]", "suite.benchmarks.matmul.n_range=[32]", "suite.benchmarks.matmul.k_range=[32]", flags=("--multirun",))
    assert run.returncode == 0, run.stderr
    docs = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*/results.json")]
    assert len(list((tmp_path / "results" / "sweeps").glob("*/multirun.yaml"))) == 1
    assert sorted(d["rows"][-1]["params"]["batch_size"] for d in docs) == [1, 2]
    assert all(d["rows"][-1]["unit"] == "tokens/s" for d in docs)


def test_bad_override_fails_before_running(tmp_path: Path) -> None:
    run = _run(tmp_path, "dtype=fp12")
    assert run.returncode != 0
    assert "dtype='fp12'" in run.stderr and "nothing was run" in run.stderr
    assert not (tmp_path / "results").exists()
