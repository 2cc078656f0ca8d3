"""The job side of packed maps, run here as real processes without Slurm: records, workers,
retries, a segfaulting worker, resuming a pack, and the progress lines of a waiting process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cloudpickle

from aifsdk import _packrun
from aifsdk._progress import Progress

REPO = Path(__file__).resolve().parents[2]


def _folder(tmp_path: Path, target: object, items: list, pack: int, retries: int = 0, items_per_worker: int | str = 2) -> Path:
    from aifsdk._run import sha256_file

    folder = tmp_path / "map"
    folder.mkdir(parents=True)
    (folder / _packrun.TARGET_FILE).write_bytes(cloudpickle.dumps(target))
    (folder / _packrun.ITEMS_FILE).write_bytes(cloudpickle.dumps(items))
    (folder / _packrun.HASH_FILE).write_text("".join(f"{sha256_file(folder / n)}  {n}\n" for n in (_packrun.TARGET_FILE, _packrun.ITEMS_FILE)))
    packs = [[s, min(pack, len(items) - s)] for s in range(0, len(items), pack)]
    (folder / "map.json").write_text(json.dumps({"n": len(items), "pack": pack, "packs": packs, "retries": retries, "kind": "function",
                                                 "items_per_worker": items_per_worker, "cores_per_worker": 1}))
    return folder


def _run_pack(folder: Path, pack: int) -> subprocess.CompletedProcess[str]:
    code = ("import json, sys; from pathlib import Path; from aifsdk._packrun import run_pack\n"
            "f = Path(sys.argv[1]); print(run_pack(f, int(sys.argv[2]), json.loads((f / 'map.json').read_text())))")
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'tests' / 'cluster'}{os.pathsep}{REPO}")
    return subprocess.run([sys.executable, "-c", code, str(folder), str(pack)], capture_output=True, text=True, timeout=120, env=env)


def _outcomes(folder: Path) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for path in sorted((folder / "results").glob("*.pkl")):
        for rec in _packrun.read_records(path)[0]:
            out.setdefault(rec["i"], []).append(rec)
    return {i: sorted(recs, key=lambda r: r["attempt"]) for i, recs in out.items()}  # workers' files interleave


def test_a_pack_runs_its_items_with_their_output_and_survives_a_segfault(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "cluster"))
    try:
        from map_jobs import pick
    finally:
        sys.path.pop(0)
    items = [("ok", 0), ("raise", "bad"), ("segv",), ("flaky", str(tmp_path / "mark")), ("ok", 4), ("ok", 5)]
    folder = _folder(tmp_path, pick, items, pack=4, retries=1)
    first = _run_pack(folder, 0)
    assert first.returncode == 0 and first.stdout.split() == ["4"], first.stderr  # items 0-3 ended
    got = _outcomes(folder)
    assert set(got) == {0, 1, 2, 3}  # pack 0 only
    assert got[0][-1]["ok"] and _packrun.load_value(got[0][-1]) == 0
    assert [r["attempt"] for r in got[1]] == [1, 2] and "ValueError: bad" in got[1][-1]["error"]
    assert "died (signal SIGSEGV)" in got[2][-1]["error"] and len(got[2]) == 2
    assert [r["ok"] for r in got[3]] == [False, True] and _packrun.load_value(got[3][-1]) == "recovered"
    again = _run_pack(folder, 0)  # a requeued job: nothing left to do, nothing runs again
    assert again.stdout.split() == ["0"] and _outcomes(folder) == got
    assert _run_pack(folder, 1).stdout.split() == ["2"]
    assert {i: _packrun.load_value(r[-1]) for i, r in _outcomes(folder).items() if i > 3} == {4: 4, 5: 5}


def test_auto_items_per_worker_adds_workers_for_items_that_wait_not_for_items_that_compute(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "cluster"))
    try:
        from map_jobs import nap, spin
    finally:
        sys.path.pop(0)
    cores = len(os.sched_getaffinity(0))  # one worker slot per core (cores_per_worker=1)
    waiting = _folder(tmp_path / "nap", nap, [0.2] * 40, pack=40, items_per_worker="auto")
    assert _run_pack(waiting, 0).stdout.split() == ["40"]
    pids = {_packrun.load_value(r[-1]) for r in _outcomes(waiting).values()}
    assert cores < len(pids) <= cores * _packrun.AUTO_WORKERS_PER_SLOT  # items that sleep: more workers on the same cores
    computing = _folder(tmp_path / "spin", spin, [0.2] * 4 * cores, pack=4 * cores, items_per_worker="auto")
    assert _run_pack(computing, 0).stdout.split() == [str(4 * cores)]
    pids = {_packrun.load_value(r[-1]) for r in _outcomes(computing).values()}
    assert len(pids) == cores  # items that keep their core busy (even waiting for it on a crowded machine): one worker per core


def test_records_cut_short_are_read_once_whole(tmp_path: Path) -> None:
    path = tmp_path / "w.pkl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    _packrun.append_record(fd, {"i": 0, "ok": True})
    _packrun.append_record(fd, {"i": 1, "ok": True})
    os.close(fd)
    whole = path.read_bytes()
    path.write_bytes(whole[:-3])  # the second record is still being written
    records, offset = _packrun.read_records(path)
    assert [r["i"] for r in records] == [0]
    path.write_bytes(whole)
    rest, end = _packrun.read_records(path, offset)
    assert [r["i"] for r in rest] == [1] and end == len(whole)


def test_progress_prints_one_line_per_change_when_not_on_a_terminal(tmp_path: Path) -> None:
    from aifsdk._sweep import Sweep

    folder = _folder(tmp_path, abs, list(range(10)), pack=5)
    (folder / "aifsdk-job.json").write_text(json.dumps({"job_id": "map-0000", "map": {"arrays": [], "again": []}}))
    (folder / "results").mkdir()
    sweep = Sweep(folder)  # a map whose jobs are all held back: nothing asks a scheduler
    out = io.StringIO()
    bar = Progress([sweep], stream=out)
    bar.update(final=True)
    bar.update(final=True)  # no change, no line
    fd = os.open(folder / "results" / "p0-here-1.pkl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for i in range(7):
        _packrun.append_record(fd, {"i": i, "attempt": 1, "ok": i != 3, "value": i, "error": None if i != 3 else "boom"})
    os.close(fd)
    sweep.refresh()
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "0/10 items ended (0 done, 0 running, 10 pending, 0 failed)" in lines[0]
    assert "7/10 items ended (6 done, 0 running, 3 pending, 1 failed)" in lines[1] and "ETA" in lines[1]


def test_waiting_drops_the_items_whose_outcome_came_and_keeps_the_rest(tmp_path: Path) -> None:
    from aifsdk._job import _drop_ended_items, _items_by_sweep
    from aifsdk._sweep import Item, Sweep

    folder = _folder(tmp_path, abs, list(range(10)), pack=5, retries=1)
    (folder / "aifsdk-job.json").write_text(json.dumps({"job_id": "map-0002", "folder": str(folder), "site": "slurm",
                                                        "map": {"arrays": [], "again": []}}))
    (folder / "results").mkdir()
    sweep = Sweep(folder)  # all held back: nothing asks a scheduler
    items = [Item(sweep, i) for i in range(10)]
    pending = {id(j): j for j in items}
    by_index, looked = _items_by_sweep(pending)[id(sweep)], {}
    _drop_ended_items(sweep, by_index, pending, looked)
    assert len(pending) == 10
    fd = os.open(folder / "results" / "p0-here-1.pkl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for i, ok, attempt in ((2, True, 1), (3, False, 1), (7, False, 2)):  # item 3 will be tried again; 7 is out of retries
        _packrun.append_record(fd, {"i": i, "attempt": attempt, "ok": ok, "value": i, "error": None if ok else "boom"})
    sweep.refresh()
    _drop_ended_items(sweep, by_index, pending, looked)  # only the new outcomes are looked at
    assert sorted(j.index for j in pending.values()) == [0, 1, 3, 4, 5, 6, 8, 9]
    (folder / "map-cancelled").write_text("0\n")  # cancelled as a whole: every item is looked at again
    sweep.refresh()
    _drop_ended_items(sweep, by_index, pending, looked)
    assert not pending and not by_index


def test_auto_packs_not_submitted_yet_are_split_to_fit_the_time_limit_at_the_items_speed(tmp_path: Path) -> None:
    from aifsdk._sweep import Sweep

    folder = _folder(tmp_path, abs, list(range(400)), pack=200)
    spec = json.loads((folder / "map.json").read_text())
    (folder / "map.json").write_text(json.dumps(dict(spec, auto=True, time_minutes=2)))
    record = {"job_id": "map-0001", "map": {"arrays": [{"seq": 0, "packs": [0], "job_id": "7"}], "again": [], "packs": 2}}
    (folder / "aifsdk-job.json").write_text(json.dumps(record))
    (folder / "results").mkdir()
    fd = os.open(folder / "results" / "p0-here-1.pkl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for i in range(5):  # 3 s an item, one worker: 60 s (half of 2 minutes) holds 20 items
        _packrun.append_record(fd, {"i": i, "attempt": 1, "ok": True, "value": i, "start": 100.0 + 3 * i, "end": 103.0 + 3 * i,
                                    "job": "7_0", "log": ["p0-here-1", 0, 0, 0, 0]})
    os.close(fd)
    sweep = Sweep(folder)
    sweep.refresh()
    sweep._fit_time_limit()
    packs = json.loads((folder / "map.json").read_text())["packs"]
    assert packs[0] == [0, 200]  # submitted: unchanged, its job reads it
    assert packs[1:] == [[s, 20] for s in range(200, 400, 20)]
    assert [sweep.pack_of(i) for i in (0, 199, 200, 219, 220, 399)] == [0, 0, 1, 1, 2, 10]
    assert sweep.held_back() == list(range(1, 11))


def test_only_a_full_queue_holds_jobs_back_other_refusals_are_errors() -> None:
    from aifsdk._sweep import _limit_refusal

    assert _limit_refusal("sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: Job violates "
                          "accounting/QOS policy (job submit limit, user's size and/or time limits)")
    assert _limit_refusal("sbatch: error: AssocMaxSubmitJobLimit")
    assert not _limit_refusal("sbatch: error: QOSMaxWallDurationPerJobLimit\nsbatch: error: Batch job submission failed: Job "
                              "violates accounting/QOS policy (job submit limit, user's size and/or time limits)")


def test_one_worker_slot_per_gpu_on_nvidia_and_amd_nodes(monkeypatch) -> None:
    """What Slurm sets in a GPU job step decides the slots (the variables are set here as Slurm would)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert [s["env"] for s in _packrun.worker_slots(2, 1)] == [{"CUDA_VISIBLE_DEVICES": "2"}] * 2 + [{"CUDA_VISIBLE_DEVICES": "3"}] * 2
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7")
    assert [s["env"]["ROCR_VISIBLE_DEVICES"] for s in _packrun.worker_slots(1, 1)] == [str(g) for g in range(8)]
    monkeypatch.delenv("ROCR_VISIBLE_DEVICES")
    cores = sorted(os.sched_getaffinity(0))
    slots = _packrun.worker_slots(1, 1)
    assert [s["cores"] for s in slots] == [[c] for c in cores] and all(not s["env"] for s in slots)
