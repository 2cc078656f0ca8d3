"""The benchmark protocol: the harness (suite runner, table, command line) names no benchmark, and a
benchmark written outside the package runs through it with its own config, check, steps, notes and
end-of-run file, like the shipped ones."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmarks._suite import benchmark_calls, count_steps, run_suite
from benchmarks._table import format_table
from benchmarks.protocol import Benchmark, benchmark, benchmarks_of, load_benchmark
from benchmarks.results import Row

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
HARNESS = ("_suite.py", "_table.py", "__main__.py")


def _compose(*overrides: str) -> Any:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("benchmarks", overrides=list(overrides))


def _shipped() -> dict[str, Benchmark]:
    targets = set()
    for path in (CONFIGS / "suite").glob("*.yaml"):
        targets |= set(re.findall(r"_target_:\s*(\S+)", path.read_text()))
    return {t: load_benchmark(t) for t in sorted(targets)}


def test_every_shipped_target_is_a_benchmark_and_the_harness_names_none() -> None:
    shipped = _shipped()
    assert {b.name for b in shipped.values()} >= {"matmul", "membw", "hostcopy", "workload", "allreduce", "scaling"}
    assert all(isinstance(b, Benchmark) for b in shipped.values())
    words = {b.name for b in shipped.values()} | {t.rsplit(".", 1)[-1] for t in shipped} | {t.split(".")[1] for t in shipped}
    for name in HARNESS:  # its code: names and strings (the module docstring shows the command line's use)
        tree = ast.parse((REPO / "benchmarks" / name).read_text())
        tree.body = tree.body[1:] if ast.get_docstring(tree) else tree.body
        text = " ".join(n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else str(n.value)
                        for n in ast.walk(tree) if isinstance(n, (ast.Name, ast.Attribute)) or isinstance(n, ast.Constant) and isinstance(n.value, str))
        text += " " + " ".join(a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names)
        text += " " + " ".join(n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
        named = sorted(w for w in words if re.search(rf"\b{re.escape(w)}s?\b", text))
        assert named == [], f"benchmarks/{name} names {named}"


def _tiny_run(ctx: Any, *, values: list[float], label: str = "case") -> list[Row]:
    ctx.step(f"tiny {label}")
    return [Row("tiny", label, values=[float(v) for v in values], unit="items/s", params={"seen": ctx.device.kind})]


def _tiny_finish(document: dict[str, Any], folder: Path) -> str:
    (folder / "tiny.txt").write_text(str(len(document["rows"])))
    return "tiny wrote tiny.txt"


tiny = benchmark("tiny", configure=lambda kwargs, config: dict(kwargs, label=f"{config['dtype']} case"),
                 check=lambda kwargs: [] if kwargs["values"] else [f"values={kwargs['values']}: allowed one or more. Fix: values=[1,2]"],
                 steps=lambda kwargs, device: 3, notes=lambda row: [f"tiny note of {len(row['values'])} samples"],
                 finish=_tiny_finish)(_tiny_run)


def _with_tiny(values: list[float], rounds: int = 1) -> Any:
    cfg = _compose("device=cpu", f"rounds={rounds}")
    OmegaConf.set_struct(cfg, False)
    cfg.suite.benchmarks = {"mine": {"_target_": f"{__name__}.tiny", "values": values}}
    return cfg


def test_a_benchmark_of_ones_own_runs_through_the_harness(tmp_path: Path) -> None:
    cfg = _with_tiny([1.0, 2.0, 3.0, 4.0], rounds=2)
    ((name, bench, kwargs),) = benchmark_calls(cfg, _device())
    assert name == "mine" and bench is tiny and kwargs == {"values": [1.0, 2.0, 3.0, 4.0], "label": "fp32 case"}
    assert count_steps([(name, bench, kwargs)], _device(), rounds=2) == 6
    document, failed = run_suite(cfg, [], progress_stream=io.StringIO())
    assert failed == 0
    (row,) = document["rows"]
    assert row["case"] == "fp32 case" and row["values"] == [1.0, 2.0, 3.0, 4.0] * 2 and row["stats"]["median"] == 2.5
    assert "tiny note of 8 samples" in format_table(document)
    assert benchmarks_of(document) == {"tiny": tiny}
    assert tiny.finish(document, tmp_path) == "tiny wrote tiny.txt" and (tmp_path / "tiny.txt").read_text() == "1"


def test_its_check_runs_before_anything_is_measured() -> None:
    with pytest.raises(ValueError, match=r"(?s)1 problem\(s\).*nothing was run.*suite.benchmarks.mine: values=\[\]: allowed one or more"):
        benchmark_calls(_with_tiny([]), _device())


def test_a_plain_function_target_gets_the_defaults() -> None:
    plain = load_benchmark(f"{__name__}._tiny_run")
    assert plain.name == "_tiny_run" and not plain.submits_jobs and plain.check({}) == [] and plain.notes({}) == []
    with pytest.raises(TypeError, match="not a benchmark"):
        load_benchmark(f"{__name__}.HARNESS")


def _device() -> Any:
    from benchmarks._device import detect

    return detect("cpu")


def test_the_documented_example_benchmark_runs_through_the_harness() -> None:
    """docs/benchmarks.md's "Your own benchmark" example, executed as a module and named by a suite entry."""
    import sys
    import types

    page = (REPO / "docs" / "benchmarks.md").read_text()
    code = re.search(r"## Your own benchmark.*?```python\n(.*?)```", page, flags=re.S).group(1)
    module = types.ModuleType("docs_own_benchmark")
    exec(compile(code, "docs/benchmarks.md", "exec"), module.__dict__)  # noqa: S102 - the page's own example
    sys.modules[module.__name__] = module
    try:
        cfg = _compose("device=cpu", "timing.min_samples=3", "timing.max_samples=3", "timing.min_time_s=0")
        OmegaConf.set_struct(cfg, False)
        cfg.suite.benchmarks = {"copy": {"_target_": "docs_own_benchmark.copy", "mb": 1}}
        document, failed = run_suite(cfg, [], progress_stream=io.StringIO())
        assert failed == 0
        (row,) = document["rows"]
        assert row["benchmark"] == "copy" and row["unit"] == "GB/s" and row["stats"]["n"] == 3 and row["stats"]["median"] > 0
        cfg.suite.benchmarks = {"copy": {"_target_": "docs_own_benchmark.copy", "mb": 0}}
        with pytest.raises(ValueError, match="mb: allowed > 0"):
            benchmark_calls(cfg, _device())
    finally:
        del sys.modules[module.__name__]
