"""The job side of a packed map: one Slurm job runs a pack of items, several at once.

    python -u -m aifsdk._packrun <map folder>

The array task finds its pack (``arrays/<n>.json`` lists the pack of each task of array ``n``),
checks the submitted target and items against their hashes, and skips the items already done
(their records are in ``results/``). It then starts one worker process per GPU
(``CUDA_VISIBLE_DEVICES`` / ``ROCR_VISIBLE_DEVICES`` set to that GPU) or per group of cores
(pinned to them), ``items_per_worker`` of them each, and hands out the items one at a time. With
``items_per_worker="auto"`` a core group starts with one worker and gets another (up to
``AUTO_WORKERS_PER_SLOT``) while its workers' items leave its cores idle: the CPU time of their
last items (and their wait for a CPU), over their run time, adds up to less than ``IDLE_SHARE``
of its cores. GPU workers stay
one per GPU (their items' GPU time does not show as CPU time).

Each worker appends one record per item to its own file ``results/p<pack>-<host>-<pid>.pkl``
(length-prefixed pickles: index, attempt, outcome, value or traceback, start and end times, and
where its output starts and ends in the worker's ``logs/`` files). A failed item is tried again up
to ``retries`` times; a worker that dies (a segfault, the OOM killer) fails only its item, and a
new worker takes its place. On Slurm's warning before the time limit (USR2) the job requeues
itself if it finished an item since it started, and the requeued job goes on with the rest.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ._errors import CommandFailed, SnapshotIntegrityError

TARGET_FILE = "map-target.pkl"
ITEMS_FILE = "map-items.pkl"
HASH_FILE = "map.sha256"
CANCELLED_ITEMS = "cancelled-items.txt"
HEADER = struct.Struct("<Q")
AUTO_WORKERS_PER_SLOT = 4  # items_per_worker="auto": at most this many workers on one core group
IDLE_SHARE = 0.5  # ... and another one only while its workers' last items kept its cores busy less than this


# -- records ------------------------------------------------------------------------------------
def append_record(fd: int, record: dict[str, Any]) -> None:
    """One record, in one write to a file opened O_APPEND (readers see it whole or not at all):
    its facts as JSON (what status, jobs and the progress bar read), then the value pickled (read
    only by ``result()``)."""
    import cloudpickle

    meta = {k: v for k, v in record.items() if k != "value"}
    try:
        value = cloudpickle.dumps(record.get("value"))
    except Exception as exc:  # an unpicklable value fails the item, not the worker
        value = cloudpickle.dumps(None)
        meta.update(ok=False, error=f"the item's value could not be pickled: {type(exc).__name__}: {exc}")
    head = json.dumps(meta, default=str).encode()
    os.write(fd, HEADER.pack(len(head) + len(value)) + HEADER.pack(len(head)) + head + value)


def read_records(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The whole records of ``path`` from ``offset`` (their facts; the pickled value as bytes under
    ``"pickled"``, not loaded); and the offset after the last whole one."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return [], offset
    out, pos = [], 0
    while pos + 2 * HEADER.size <= len(data):
        (size,) = HEADER.unpack_from(data, pos)
        (head,) = HEADER.unpack_from(data, pos + HEADER.size)
        body = pos + 2 * HEADER.size
        if body + size > len(data):
            break  # still being written
        record = json.loads(data[body: body + head])
        record["pickled"] = data[body + head: body + size]
        out.append(record)
        pos = body + size
    return out, offset + pos


def load_value(record: dict[str, Any]) -> Any:
    import pickle

    return pickle.loads(record["pickled"])


def is_final(record: dict[str, Any], retries: int) -> bool:
    return bool(record["ok"]) or record["attempt"] > retries


def pack_state(folder: Path, pack: int, retries: int) -> tuple[set[int], dict[int, int]]:
    """(items of the pack that are done for good, failed attempts so far per item)."""
    done: set[int] = set()
    attempts: dict[int, int] = {}
    for path in (folder / "results").glob(f"p{pack}-*.pkl"):
        for rec in read_records(path)[0]:
            if is_final(rec, retries):
                done.add(rec["i"])
            elif not rec["ok"]:
                attempts[rec["i"]] = max(attempts.get(rec["i"], 0), rec["attempt"])
    return done, attempts


def cancelled_items(folder: Path) -> set[int]:
    try:
        return {int(x) for x in (folder / CANCELLED_ITEMS).read_text().split()}
    except (OSError, ValueError):
        return set()


# -- devices ------------------------------------------------------------------------------------
def devices() -> tuple[str | None, list[str]]:
    """(the variable that selects GPUs, the GPUs this job step may use), or (None, []) without GPUs."""
    for var in ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"):
        value = os.environ.get(var, "")
        if value and value not in ("NoDevFiles", "-1"):
            return var, value.split(",")
    return None, []


def worker_slots(items_per_worker: int, cores_per_worker: int) -> list[dict[str, Any]]:
    """One slot per worker: the GPU it sees, or the cores it is pinned to."""
    var, gpus = devices()
    if gpus:
        return [{"env": {var: gpu}, "cores": None} for gpu in gpus for _ in range(items_per_worker)]
    cores = sorted(os.sched_getaffinity(0))
    groups = [cores[k: k + cores_per_worker] for k in range(0, len(cores), cores_per_worker)]
    groups = [g for g in groups if len(g) == cores_per_worker] or [cores]
    return [{"env": {}, "cores": g} for g in groups for _ in range(items_per_worker)]


# -- the worker ---------------------------------------------------------------------------------
def _worker(conn: Any, folder: Path, pack: int, slot: dict[str, Any], target: Any, items: list[Any], kind: str) -> None:
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # the job's main process handles the time limit
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.update(slot["env"])
    if slot["cores"]:
        try:
            os.sched_setaffinity(0, slot["cores"])
        except OSError:
            pass
    host, job = socket.gethostname(), _job_id()
    tag = f"p{pack}-{host}-{os.getpid()}"
    out_fd = os.open(folder / "logs" / f"{tag}.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    err_fd = os.open(folder / "logs" / f"{tag}.err", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    results = os.open(folder / "results" / f"{tag}.pkl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        index, attempt = task
        sys.stdout.flush()
        sys.stderr.flush()
        where = [tag, os.lseek(1, 0, os.SEEK_END), 0, os.lseek(2, 0, os.SEEK_END), 0]
        busy = _busy_seconds()
        start = time.time()
        ok, value, error = True, None, None
        try:
            value = _call(target, items[index], kind)
        except BaseException:  # noqa: BLE001 - the item's failure is its record, not the worker's
            ok, error = False, traceback.format_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        where[2], where[4] = os.lseek(1, 0, os.SEEK_END), os.lseek(2, 0, os.SEEK_END)
        end, busy = time.time(), _busy_seconds() - busy
        record = {"i": index, "attempt": attempt, "ok": ok, "value": value, "error": error, "start": start,
                  "end": end, "host": host, "job": job, "log": where}
        append_record(results, record)
        conn.send((index, ok, busy / max(end - start, 1e-6)))


def _busy_seconds() -> float:
    """The CPU time of this worker and of the processes it waited for (a command's), plus the time
    it waited for a CPU (the kernel's run-queue delay), so that an item that computes on a crowded
    node counts as busy, not as waiting."""
    t = os.times()  # the children's part only: it counts in clock ticks, too coarse for short items
    try:
        with open("/proc/self/schedstat") as f:
            queued = int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        queued = 0.0
    return time.process_time() + t.children_user + t.children_system + queued


def _call(target: Any, item: Any, kind: str) -> Any:
    if kind == "command":  # the command with this item's arguments; output into the worker's logs
        import subprocess

        from ._command import CommandResult

        argv = [*target.argv, *item]
        cwd = target.cwd if os.path.isdir(target.cwd) else None
        paths = [Path(os.readlink(f"/proc/self/fd/{fd}")) for fd in (1, 2)]
        offsets = [os.lseek(fd, 0, os.SEEK_END) for fd in (1, 2)]
        started = time.monotonic()
        code = subprocess.run(argv, cwd=cwd).returncode
        if code != 0:
            raise CommandFailed(f"command {argv} exited with code {code} on {socket.gethostname()}")
        texts = []
        for path, offset in zip(paths, offsets):
            with open(path, "rb") as f:
                f.seek(offset)
                texts.append(f.read().decode(errors="replace"))
        return CommandResult(tuple(argv), code, texts[0], texts[1], time.monotonic() - started, paths[0], paths[1])
    return target(item)


def _job_id() -> str:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID", "")


# -- the job's main process ---------------------------------------------------------------------
def _load(folder: Path) -> tuple[Any, list[Any]]:
    """The target and the items, after checking them against the hashes recorded at submission."""
    import pickle

    from ._run import sha256_file

    expected = dict(line.split()[::-1] for line in (folder / HASH_FILE).read_text().splitlines() if line.strip())
    for name in (TARGET_FILE, ITEMS_FILE):
        if sha256_file(folder / name) != expected.get(name):
            raise SnapshotIntegrityError(f"{folder / name} changed after submission; refusing to load it")
    with open(folder / ITEMS_FILE, "rb") as f:
        items = pickle.load(f)
    with open(folder / TARGET_FILE, "rb") as f:
        target = pickle.load(f)
    return target, items


def run_pack(folder: Path, pack: int, spec: dict[str, Any]) -> int:
    """Run the items of ``pack`` not done yet; returns how many finished in this run."""
    import fcntl
    import multiprocessing as mp
    from multiprocessing.connection import wait as wait_any

    (folder / "results").mkdir(exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    lock = os.open(folder / "results" / f"p{pack}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"aifsdk: pack {pack} is being run by another job; nothing to do here", file=sys.stderr, flush=True)
        return 0
    retries = int(spec.get("retries", 0))
    start, count = spec["packs"][pack]
    done, attempts = pack_state(folder, pack, retries)
    skip = done | cancelled_items(folder)
    todo = [(i, attempts.get(i, 0) + 1) for i in range(start, start + count) if i not in skip]
    if done:
        print(f"aifsdk: pack {pack}: {len(done)} item(s) already done, {len(todo)} to run", file=sys.stderr, flush=True)
    if not todo:
        return 0
    target, items = _load(folder)
    kind = spec.get("kind", "function")
    per_worker = spec.get("items_per_worker") or 1
    auto = per_worker == "auto"
    slots = worker_slots(1 if auto else int(per_worker), int(spec.get("cores_per_worker") or 1))[: len(todo)]
    ctx = mp.get_context("fork")
    stopping: list[int] = []
    signal.signal(signal.SIGUSR2, lambda s, _f: stopping.append(s))
    signal.signal(signal.SIGTERM, lambda s, _f: stopping.append(s))
    workers: dict[Any, dict[str, Any]] = {}

    def start_worker(slot: dict[str, Any]) -> None:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, folder, pack, slot, target, items, kind), daemon=True)
        proc.start()
        child.close()
        workers[parent] = {"proc": proc, "slot": slot, "task": None, "share": 1.0}

    def busy_enough(slot: dict[str, Any]) -> bool:
        """items_per_worker="auto": True while the slot needs no other worker (a GPU, enough of them,
        or their last items kept its cores busy)."""
        on_slot = [w for w in workers.values() if w["slot"] is slot]
        return (not auto or slot["cores"] is None or len(on_slot) >= AUTO_WORKERS_PER_SLOT
                or sum(w["share"] for w in on_slot) >= IDLE_SHARE * len(slot["cores"]))

    for slot in slots:
        start_worker(slot)
    own = os.open(folder / "results" / f"p{pack}-{socket.gethostname()}-{os.getpid()}-main.pkl",
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    finished = 0
    queue = list(todo)
    while (queue or any(w["task"] for w in workers.values())) and not stopping:
        cancelled = cancelled_items(folder) if queue else set()
        queue = [t for t in queue if t[0] not in cancelled]
        for conn, w in workers.items():
            if w["task"] is None and queue:
                w["task"] = queue.pop(0)
                conn.send(w["task"])
        busy = [c for c, w in workers.items() if w["task"] is not None]
        if not busy:
            break
        for conn in wait_any(busy, timeout=1.0):
            w = workers[conn]
            index, attempt = w["task"]
            try:
                _, ok, w["share"] = conn.recv()
            except (EOFError, OSError):  # the worker died with the item
                w["proc"].join(5)
                code = w["proc"].exitcode
                if code in (-signal.SIGTERM, -signal.SIGKILL, -signal.SIGINT) and not stopping:
                    time.sleep(0.5)  # Slurm stopping the whole job (scancel, time limit) reaches this process too
                if stopping:
                    del workers[conn]
                    queue.insert(0, (index, attempt))  # not the item's failure: it is left for the next run
                    continue
                why = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
                ok = False
                append_record(own, {"i": index, "attempt": attempt, "ok": False, "value": None,
                                    "error": f"the worker process running item {index} died ({why}) on {socket.gethostname()}",
                                    "start": None, "end": time.time(), "host": socket.gethostname(), "job": _job_id(), "log": None})
                del workers[conn]
                if not stopping:
                    start_worker(w["slot"])
            else:
                w["task"] = None
                if len(queue) > sum(1 for x in workers.values() if x["task"] is None) and not busy_enough(w["slot"]):
                    start_worker(w["slot"])  # its items wait more than they compute: one more runs on its cores
            if ok or attempt > retries:
                finished += 1
            else:
                queue.append((index, attempt + 1))
    for conn, w in workers.items():
        try:
            conn.send(None)
        except OSError:
            pass
    deadline = time.monotonic() + (0 if stopping else 10)
    for w in workers.values():
        if stopping:
            w["proc"].kill()
        w["proc"].join(max(0.0, deadline - time.monotonic()))
    if signal.SIGUSR2 in stopping:  # Slurm's warning before the time limit (a cancel sends SIGTERM)
        left = len(queue) + sum(1 for w in workers.values() if w["task"])
        _requeue(pack, finished, left)
    return finished


def _requeue(pack: int, finished: int, left: int) -> None:
    """Near the time limit: requeue this job (same id) if it got anywhere, so that it resumes."""
    import subprocess

    job = _job_id()
    if finished == 0:
        print(f"aifsdk: pack {pack} stopped near its time limit without finishing an item; {left} item(s) left, "
              "not requeued (give the map more time or fewer items per job)", file=sys.stderr, flush=True)
        return
    print(f"aifsdk: pack {pack}: time limit near, {finished} item(s) done in this run, {left} left: requeueing {job}",
          file=sys.stderr, flush=True)
    subprocess.run(["scontrol", "requeue", job], check=False)


def main() -> None:
    folder = Path(sys.argv[1])
    from ._run import extract_code

    problem, _ = extract_code(folder)
    if problem:
        print(f"aifsdk: {problem}", file=sys.stderr, flush=True)
        sys.exit(1)
    spec = json.loads((folder / "map.json").read_text())
    task = int(os.environ.get("SLURM_ARRAY_TASK_ID", "0"))
    seq = os.environ["AIFSDK_MAP_ARRAY"]
    id_file = folder / "arrays" / f"{seq}.id"
    if not id_file.exists() and os.environ.get("SLURM_ARRAY_JOB_ID"):  # for a submitter that died around sbatch
        tmp = id_file.with_name(f".{seq}.id.{os.getpid()}")
        tmp.write_text(os.environ["SLURM_ARRAY_JOB_ID"])
        tmp.replace(id_file)
    packs = json.loads((folder / "arrays" / f"{seq}.json").read_text())
    run_pack(folder, packs[task], spec)


if __name__ == "__main__":
    main()
