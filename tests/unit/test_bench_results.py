"""Results documents: JSON/Parquet/DataFrame round trip, old versions, no overwrite; the report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import report
from benchmarks.results import SCHEMA_VERSION, Row, load, new_document, new_run_folder, provenance, save, to_frame


def _row(case: str, values: list[float]) -> Row:
    return Row("matmul", case, values=values, times_s=[1 / v for v in values], unit="TFLOPS", params={"m": 64}, work_per_call=1.0,
               device="cpu", extra={"k": 1})


def _doc(values: list[float], name: str = "AMD EPYC", kind: str = "cpu") -> dict:
    device = {"kind": kind, "name": name, "count": 1, "versions": {"torch": "2.13.0"}}
    prov = provenance(device, ["suite=quick"], 2, env={"SLURM_JOB_ID": "42", "SLURM_JOB_NODELIST": "n[1-2]", "OMP_NUM_THREADS": "2"})
    rows = [_row("fp32 best", values), Row.skip("hostcopy", "skipped", "device cpu")]
    return new_document(rows, prov, {"suite": {"name": "quick"}}, 1.5)


def test_provenance_records_where_and_with_what() -> None:
    prov = _doc([1.0, 1.1, 0.9])["provenance"]
    assert prov["slurm"]["job_id"] == "42" and prov["slurm"]["job_nodelist"] == "n[1-2]"
    assert prov["overrides"] == ["suite=quick"] and prov["torch_threads"] == 2 and prov["torch"] == "2.13.0"
    assert len(prov["git"]["commit"]) == 40  # this repository's commit
    assert prov["env"] == {"OMP_NUM_THREADS": "2"} and prov["method_version"] >= 1 and prov["loadavg_end"]


def test_round_trip_json_parquet_dataframe(tmp_path: Path) -> None:
    doc = _doc([1.0, 1.2, 1.1, 0.9])
    folder = new_run_folder(tmp_path, doc["run_id"])
    paths = save(doc, folder, "table", "cfg: 1")
    run = load(folder)
    assert run.document == json.loads(json.dumps(doc, default=str))
    frame = run.frame()
    assert list(frame["case"]) == ["fp32 best", "skipped"]
    assert frame.loc[0, "median"] == pytest.approx(1.05) and list(frame.loc[0, "values"]) == [1.0, 1.2, 1.1, 0.9]
    parquet = pd.read_parquet(paths["parquet"])
    pd.testing.assert_frame_equal(parquet.drop(columns=["values", "times_s"]), to_frame(doc).drop(columns=["values", "times_s"]))
    assert list(parquet.loc[0, "values"]) == [1.0, 1.2, 1.1, 0.9]
    from_parquet = load(paths["parquet"])
    assert from_parquet.rows[0]["stats"]["median"] == pytest.approx(1.05)


def test_runs_are_never_overwritten(tmp_path: Path) -> None:
    doc = _doc([1.0, 1.1])
    first = new_run_folder(tmp_path, doc["run_id"])
    second = new_run_folder(tmp_path, doc["run_id"])  # same id: a fresh folder, not the same one
    assert first != second and first.exists() and second.exists()
    save(doc, first)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        save(doc, first)


def test_version_1_documents_still_load(tmp_path: Path) -> None:
    """Version 1 rows had times and work only; the loader computes values and statistics."""
    v1 = {"schema_version": 1, "run_id": "old", "created": "2026-11-01T00:00:00+00:00", "provenance": {"host": "h", "device": {"kind": "cpu"}},
          "config": {}, "rows": [{"benchmark": "matmul", "case": "fp32 best", "metric": "throughput", "unit": "TFLOPS",
                                  "work_per_call": 2.0, "times_s": [1.0, 2.0, 4.0]}]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(v1))
    run = load(path)
    assert run.document["schema_version"] == SCHEMA_VERSION
    assert run.rows[0]["values"] == [2.0, 1.0, 0.5] and run.rows[0]["stats"]["median"] == 1.0
    newer = dict(v1, schema_version=SCHEMA_VERSION + 1)
    path.write_text(json.dumps(newer))
    with pytest.raises(ValueError, match="newer than this code reads.*update aifsdk"):
        load(path)
    with pytest.raises(FileNotFoundError, match="no such results file"):
        load(tmp_path / "nothing")


def _saved(tmp_path: Path, doc: dict) -> Path:
    folder = new_run_folder(tmp_path, doc["run_id"])
    save(doc, folder)
    return folder


def test_report_refuses_mismatched_hardware_unless_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cpu = _saved(tmp_path, _doc([1.0, 1.1, 1.2]))
    gpu = _saved(tmp_path, _doc([100.0, 101.0, 99.0], name="NVIDIA H100 80GB HBM3", kind="cuda"))
    assert report.main([str(cpu), str(gpu), "--out", str(tmp_path / "r1")]) == 2
    err = capsys.readouterr().err
    assert "refusing to compare runs from different hardware" in err and "--allow-mismatched-hardware" in err
    assert not (tmp_path / "r1").exists()
    assert report.main([str(cpu), str(gpu), "--out", str(tmp_path / "r2"), "--allow-mismatched-hardware"]) == 0
    md = (tmp_path / "r2" / "report.md").read_text()
    assert "WARNING: this comparison crosses hardware" in md and "'NVIDIA H100 80GB HBM3'" in md
    assert (tmp_path / "r2" / "matmul-tflops.png").read_bytes()[:4] == b"\x89PNG"


def _spread(centre: float, n: int, seed: int, width: float = 0.02) -> list[float]:
    import random

    rng = random.Random(seed)
    return [centre * (1 + rng.uniform(-width, width)) for _ in range(n)]


def test_report_on_noisy_runs_says_not_comparable_and_why(tmp_path: Path) -> None:
    """Two runs of the same workload, one with CV ~80 % and one with 3 samples: no verdict, reasons given."""
    base = _saved(tmp_path, _doc([1.0, 0.2, 2.5, 0.3, 1.9, 0.1, 2.2]))
    few = _saved(tmp_path, _doc([0.19, 0.2, 0.21]))
    md = report.render([report.load(base), report.load(few)], tmp_path / "rep", plots=False).read_text()
    line = next(x for x in md.splitlines() if x.startswith("| matmul | fp32 best"))
    assert "not comparable" in line and "slower" not in line and "faster" not in line
    assert "the baseline is UNSTABLE (CV" in line and "this run has 3 sample(s), fewer than 5" in line


def test_report_on_clean_runs_gives_a_tested_verdict(tmp_path: Path) -> None:
    base = _saved(tmp_path, _doc(_spread(10.0, 20, seed=1)))
    same = _saved(tmp_path, _doc(_spread(10.0, 20, seed=2)))
    faster = _saved(tmp_path, _doc(_spread(11.0, 20, seed=3)))
    md = report.render([report.load(base), report.load(same), report.load(faster)], tmp_path / "rep", plots=False).read_text()
    cells = next(x for x in md.splitlines() if x.startswith("| matmul | fp32 best")).split(" | ")
    assert cells[-2].startswith("no significant change (x") and "Mann-Whitney p=" in cells[-2] and "95% CI" in cells[-2]
    assert cells[-1].startswith("faster (x1.1") and "Mann-Whitney p=" in cells[-1]
    p = float(cells[-1].split("p=")[1].split(")")[0])
    assert p < 0.001


def test_report_goes_beside_the_runs_and_draws_one_unit_per_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    results_dir = tmp_path / "my results"
    docs = []
    for seed in (1, 2):
        doc = _doc(_spread(10.0, 10, seed))
        doc["rows"] += [dataclasses.replace(_row("unet3d fp32", _spread(5.0, 10, seed)), benchmark="workload", unit="samples/s").to_dict(),
                        dataclasses.replace(_row("logformer fp32", _spread(900.0, 10, seed)), benchmark="workload", unit="tokens/s").to_dict()]
        docs.append(_saved(results_dir, doc))
    monkeypatch.chdir(tmp_path)
    assert report.main([str(d) for d in docs]) == 0
    assert not (tmp_path / "results").exists()
    (folder,) = (results_dir / "reports").iterdir()
    assert sorted(p.name for p in folder.glob("*.png")) == ["matmul-tflops.png", "workload-samples-s.png", "workload-tokens-s.png"]
    assert f"report: {folder / 'report.md'}" in capsys.readouterr().out


def test_report_output_folder_is_new(tmp_path: Path) -> None:
    run = _saved(tmp_path, _doc([1.0, 1.1]))
    (tmp_path / "taken").mkdir()
    assert report.main([str(run), "--out", str(tmp_path / "taken"), "--no-plots"]) == 2


def test_a_row_computes_its_statistics_and_percentages_from_its_samples() -> None:
    row = Row("matmul", "fp32 best", values=[1.0, 2.0, 3.0, 4.0, 5.0], unit="TFLOPS", reference={"device": "X", "peak": 10.0, "achievable": 4.0,
                                                                                                 "pct_of_peak": 99.0})
    written = row.to_dict()
    assert written["stats"]["median"] == 3.0 and written["stats"]["p10"] == pytest.approx(1.4) and written["stats"]["n"] == 5
    assert written["reference"]["pct_of_peak"] == pytest.approx(30.0) and written["reference"]["pct_of_achievable"] == pytest.approx(75.0)
    again = Row.from_dict(dict(written, stats={"median": 99.0}))  # figures that the samples do not give are not carried over
    assert again.to_dict() == written
    assert Row.skip("hostcopy", "skipped", "device cpu").to_dict() == {"benchmark": "hostcopy", "case": "skipped", "skipped": "device cpu"}


def test_frame_keeps_skipped_rows() -> None:
    frame = to_frame(_doc([1.0, 2.0]))
    assert frame.loc[1, "skipped"] == "device cpu" and pd.isna(frame.loc[1, "median"])
