"""Packed maps: ``aifsdk.map(fn, items, pack=N)`` runs N items per Slurm job, several at once.

One folder per map holds everything: the target and the items (one pickle each, hashed), the
packs (``map.json``: which items each job runs), the job arrays submitted so far
(``aifsdk-job.json``, with ``arrays/<n>.json``: the pack of each array task), one results file per
worker (``results/``) and one log pair per worker (``logs/``). Its size grows with the number of
items, not the number of files.

Packs the user may not queue yet (the association's MaxSubmitJobs, the QoS's
MaxSubmitJobsPerUser, the profile's ``max_submit_jobs``) are held back: the folder records which
packs were submitted, so whoever waits on the map next (this process, ``aifsdk wait``,
``aifsdk jobs``, another process's :func:`aifsdk.wait`) submits the rest as earlier jobs end. A pack
whose job ended without finishing its items (killed, node failure) is submitted again, twice at
most. Each item is a :class:`Item`, a :class:`~aifsdk.Job` whose id is ``<map id>.<index>``.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._backends import Backend, backend_for, backend_of
from ._errors import JobCancelledError, JobFailedError, JobNotFoundError, SchedulerError
from ._job import Job
from ._packrun import CANCELLED_ITEMS, HASH_FILE, ITEMS_FILE, TARGET_FILE, is_final, read_records
from ._paths import JOB_FILE, register
from ._scheduler import TERMINAL_STATES, Slurm, chunk_cap

MAP_CANCELLED = "map-cancelled"
MAX_SUBMISSIONS = 3  # a pack whose job ends with items left is submitted again, at most this often in all
TICK_S = 1.0  # a map looks at the scheduler (and submits what it holds back) at most this often
AUTO_MAX_JOBS = 1000  # pack="auto" packs into at most this many jobs


def new_map_id() -> str:
    return f"map-{secrets.token_hex(4)}"


class Sweep:
    """A packed map, read from its folder: its items' outcomes and the submission of its packs."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.record: dict[str, Any] = json.loads((self.folder / JOB_FILE).read_text())
        self.spec: dict[str, Any] = json.loads((self.folder / "map.json").read_text())
        self.outcomes: dict[int, dict[str, Any]] = {}  # final records
        self._offsets: dict[str, int] = {}
        self._ended: dict[str, float] = {}  # array task -> when the scheduler first said it ended
        self._task_states: dict[str, str] = {}
        self._lost: dict[int, str] = {}
        self._ticked = float("-inf")
        self._lock = threading.RLock()
        self.started = time.monotonic()
        self._cancelled: bool | None = None
        self._queued_seen: int | None = None  # the user's queued jobs, as counted for the last submission
        self._starts: list[int] | None = None
        self._tasks: tuple[tuple[Any, ...], dict[int, str]] | None = None
        self._finished_packs: set[int] = set()  # every item ended: nothing to look at again

    # -- identity ---------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return str(self.record["job_id"])

    @property
    def n(self) -> int:
        return int(self.spec["n"])

    @property
    def packs(self) -> list[list[int]]:
        return self.spec["packs"]

    @property
    def retries(self) -> int:
        return int(self.spec.get("retries", 0))

    def items(self) -> list[Item]:
        return [Item(self, i) for i in range(self.n)]

    @property
    def cancelled(self) -> bool:
        """Cancelled as a whole (read again by :meth:`refresh`)."""
        if self._cancelled is None:
            self._cancelled = (self.folder / MAP_CANCELLED).exists()
        return self._cancelled

    @property
    def backend(self) -> Backend:
        """Where the map's jobs run (asked for the scheduler, the queue, and copies over SSH)."""
        return backend_of(self.record)

    def slurm(self) -> Slurm:
        slurm = self.backend.slurm()
        if slurm is None:
            raise SchedulerError(f"map {self.id} runs on site {self.record.get('site')!r}, which has no scheduler")
        return slurm

    def _poller(self) -> Any:
        return self.backend.poller()

    def _there(self) -> Path:
        """The map's folder as its jobs see it (on the cluster, for a site reached over SSH)."""
        return self.backend.cluster_folder({**self.record, "folder": str(self.folder)})

    # -- outcomes ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the records written since the last look (one directory listing, new bytes only)."""
        self.backend.pull([self.record])  # over SSH: what the jobs wrote there
        self._cancelled = None
        try:
            names = os.listdir(self.folder / "results")
        except OSError:
            return
        with self._lock:
            for name in names:
                if not name.endswith(".pkl"):
                    continue
                records, self._offsets[name] = read_records(self.folder / "results" / name, self._offsets.get(name, 0))
                for rec in records:
                    if is_final(rec, self.retries) and rec["i"] not in self.outcomes:
                        self.outcomes[rec["i"]] = rec

    def pack_of(self, index: int) -> int:
        import bisect

        if self._starts is None or len(self._starts) != len(self.packs):
            self._starts = [start for start, _ in self.packs]
        return bisect.bisect_right(self._starts, index) - 1

    def task_of(self, pack: int) -> str | None:
        """The array task (``<array>_<k>``) that runs ``pack`` now (the latest submission), if any."""
        arrays = self.record["map"]["arrays"]
        key = (id(arrays), len(arrays))  # a new record (reloaded), or one more array; _save() clears it
        if self._tasks is None or self._tasks[0] != key:
            index: dict[int, str] = {}
            for array in arrays:  # later submissions of a pack win
                if array.get("job_id"):
                    index.update({p: f"{array['job_id']}_{k}" for k, p in enumerate(array["packs"])})
            self._tasks = (key, index)
        return self._tasks[1].get(pack)

    def ended(self, index: int) -> bool:
        return index in self.outcomes or index in self._lost or (self.cancelled and self._pack_idle(self.pack_of(index)))

    def _pack_idle(self, pack: int) -> bool:
        task = self.task_of(pack)
        return task is None or self._task_states.get(task, "UNKNOWN") in TERMINAL_STATES or task in self._ended

    def item_state(self, index: int) -> str:
        if index in self.outcomes:
            return "COMPLETED" if self.outcomes[index]["ok"] else "FAILED"
        if index in self._lost:
            return "FAILED"
        if self.cancelled:
            return "CANCELLED" if self._pack_idle(self.pack_of(index)) else "CANCELLING"
        task = self.task_of(self.pack_of(index))
        if task is None:
            return "PENDING"  # held back
        state = self._task_states.get(task, "PENDING")
        return "RUNNING" if state in ("RUNNING", "COMPLETING") else "PENDING"

    def counts(self) -> dict[str, int]:
        done = sum(1 for r in self.outcomes.values() if r["ok"])
        failed = len(self.outcomes) - done + sum(1 for i in self._lost if i not in self.outcomes)
        running = 0
        for pack, (start, count) in enumerate(self.packs):
            task = self.task_of(pack)
            if task and self._task_states.get(task) in ("RUNNING", "COMPLETING"):
                running += sum(1 for i in range(start, start + count) if i not in self.outcomes and i not in self._lost)
        cancelled = self.n - done - failed - running if self.cancelled else 0
        return {"done": done, "running": running, "pending": self.n - done - failed - running - cancelled,
                "failed": failed, "cancelled": cancelled}

    def complete(self) -> bool:
        return all(self.ended(i) for i in range(self.n))

    # -- the scheduler ----------------------------------------------------------------------------
    def tick(self, force: bool = False) -> None:
        """Read new results; at most once per TICK_S also ask the scheduler about the map's jobs,
        submit again packs whose job ended with items left, and submit held-back packs there is room for."""
        self.refresh()
        now = time.monotonic()
        if not force and now - self._ticked < TICK_S:
            return
        self._ticked = now
        self._reload()
        tasks = [self.task_of(p) for p in range(len(self.packs))]
        live = [t for t in tasks if t]
        if live:
            try:
                states = self._poller().states(live, max_age=TICK_S)
            except SchedulerError:
                states = {}
            for task, (state, _reason) in states.items():
                if state == "UNKNOWN" and task in self._task_states:
                    continue  # forgotten by slurmctld: keep the last state seen
                self._task_states[task] = state
                if state in TERMINAL_STATES:
                    self._ended.setdefault(task, now)
                else:
                    self._ended.pop(task, None)
        if self.cancelled:
            return
        self._resubmit_ended(now)
        try:
            self.submit_more()
        except SchedulerError as exc:
            print(f"aifsdk: map {self.id}: could not submit held-back packs yet ({exc}); trying again later", file=sys.stderr)

    def _reload(self) -> None:
        try:
            self.record = json.loads((self.folder / JOB_FILE).read_text())
        except (OSError, ValueError):
            pass

    def _left_in(self, pack: int) -> list[int]:
        start, count = self.packs[pack]
        skip = _cancelled_items(self.folder)
        return [i for i in range(start, start + count) if i not in self.outcomes and i not in skip]

    def _resubmit_ended(self, now: float) -> None:
        """A pack whose job has ended (5 s ago: results may lag on shared filesystems) with items left."""
        from ._job import RESULT_GRACE_S

        again = []
        for pack in range(len(self.packs)):
            if pack in self._finished_packs:
                continue
            task = self.task_of(pack)
            if task is None or now - self._ended.get(task, now) < RESULT_GRACE_S:
                continue
            left = self._left_in(pack)
            if not left:
                self._finished_packs.add(pack)
                continue
            submissions = sum(1 for a in self.record["map"]["arrays"] if pack in a["packs"])
            if submissions >= MAX_SUBMISSIONS:
                why = f"its job ({task}, pack {pack}) ended {self._task_states.get(task)} {submissions} times before the item finished"
                self._lost.update({i: why for i in left if i not in self._lost})
            else:
                again.append(pack)
        if again:
            with self._submit_lock():
                self._reload()
                self.record["map"].setdefault("again", [])
                self.record["map"]["again"] = sorted(set(self.record["map"]["again"]) | set(again))
                self._save()
            for pack in again:
                self._ended.pop(self.task_of(pack) or "", None)

    def held_back(self) -> list[int]:
        """Packs not submitted yet, and packs to submit again."""
        covered = {p for a in self.record["map"]["arrays"] for p in a["packs"]}
        return [p for p in range(len(self.packs)) if p not in covered] + list(self.record["map"].get("again", []))

    def room(self) -> int | None:
        """How many more jobs the user may queue now (None: no known limit)."""
        r = self.record.get("resources", {})
        slurm = self.slurm()
        limit, scope = slurm.map_limit(r.get("account"), r.get("qos"))
        profile_limit = self.record["map"].get("profile_max_submit_jobs")
        if limit is None and profile_limit is None:
            return None
        if limit is None or (profile_limit is not None and profile_limit < limit):
            limit, scope = profile_limit, {}
        self._queued_seen = slurm.queued(**scope)
        return max(0, limit - self._queued_seen)

    def submit_more(self) -> list[str]:
        """Submit held-back packs, as many as the limits allow, as arrays; returns the new array ids."""
        new = []
        with self._submit_lock():
            self._reload()
            if self.cancelled:
                return []
            self._adopt_dangling()
            self._fit_time_limit()
            while True:
                held = self.held_back()
                if not held:
                    break
                self._queued_seen = None
                room = self.room()
                take = held[: min(x for x in (room, chunk_cap(self.slurm()), len(held)) if x is not None)]
                if not take:
                    break
                try:
                    new.append(self._submit(take))
                except SchedulerError as exc:
                    if not _limit_refusal(str(exc)):
                        raise
                    break  # the user's queue filled up meanwhile (other submissions): held back, tried again later
        if new:
            self._poller().forget()  # the next look sees the new jobs
        return new

    def _fit_time_limit(self) -> None:
        """pack="auto": once items have run, split the packs not submitted yet so that each fits in
        half of the job's time limit, at the speed the items ran (their median time, over the
        workers a job had)."""
        if not self.spec.get("auto") or self.cancelled:
            return
        covered = {p for a in self.record["map"]["arrays"] for p in a["packs"]}
        first = next((p for p in range(len(self.packs)) if p not in covered), None)
        timed = [r for r in self.outcomes.values() if r["ok"] and r.get("start") and r.get("log")]
        if first is None or len(timed) < 3:
            return
        if any(p in covered for p in range(first, len(self.packs))):
            return  # not a tail of unsubmitted packs (cannot happen: packs are submitted in order)
        durations = sorted(r["end"] - r["start"] for r in timed)
        median = durations[len(durations) // 2]
        workers = max(1, max(len({r["log"][0] for r in timed if r["job"] == job}) for job in {r["job"] for r in timed}))
        budget = 0.5 * 60 * float(self.spec.get("time_minutes") or 0)
        if median <= 0 or not budget:
            return
        fits = max(1, int(budget * workers / median))
        tail = self.packs[first:]
        if max(count for _, count in tail) <= fits:
            return
        start, end = tail[0][0], tail[-1][0] + tail[-1][1]
        self.spec["packs"] = self.packs[:first] + [[s, min(fits, end - s)] for s in range(start, end, fits)]
        tmp = self.folder / f".map.json.{os.getpid()}"
        tmp.write_text(json.dumps(self.spec))
        tmp.replace(self.folder / "map.json")
        self.record["map"]["packs"] = len(self.spec["packs"])
        self._save()
        self.backend.put(self.folder, self._there(), code=False, rules=("--include=map.json", "--exclude=*"))  # over SSH
        print(f"aifsdk: map {self.id}: items take {median:.1f} s; the jobs not submitted yet get {fits} items each "
              f"to fit their time limit", file=sys.stderr)

    def _submit(self, packs: list[int]) -> str:
        """One array of ``packs``: recorded before sbatch (a dying process leaves an intent a later
        one resolves), its id after."""
        seq = len(self.record["map"]["arrays"])
        arrays = self.folder / "arrays"
        arrays.mkdir(exist_ok=True)
        (arrays / f"{seq}.json").write_text(json.dumps(packs))
        script = arrays / f"{seq}.sh"
        script.write_text(array_script(self.record["map"]["script"], seq, len(packs), self.record["map"].get("max_parallel")))
        again = set(self.record["map"].get("again", []))
        self.record["map"]["again"] = [p for p in self.record["map"].get("again", []) if p not in packs]
        self.record["map"]["arrays"].append({"seq": seq, "packs": packs, "job_id": None, "resubmitted": sorted(again & set(packs)),
                                             "queued_before": self._queued_seen})
        self._save()
        there = self._there()
        try:
            if seq == 0:
                self.backend.put(self.folder, there)  # the code and the whole folder, where the jobs run
            else:
                _push_control(self.backend, self.folder, there)
            from ._launch import submission_environment

            # from inside a job: without the outer job's variables
            array_id = self.slurm().sbatch(there / "arrays" / f"{seq}.sh", env=submission_environment())
        except SchedulerError:
            self.record["map"]["arrays"].pop()
            self.record["map"]["again"] = sorted(again)
            self._save()
            raise
        self.record["map"]["arrays"][-1]["job_id"] = array_id
        if seq == 0:
            self.record["map"]["first_array"] = array_id
        self._save()
        (arrays / f"{seq}.id").write_text(array_id)
        _push_control(self.backend, self.folder, there)
        return array_id

    def _adopt_dangling(self) -> None:
        """An array recorded as about to be submitted, without an id (the submitting process died
        around sbatch): its id from the array itself (its first task writes it), else from the queue
        (the script's path), else it was never queued and is dropped (its packs are held back again)."""
        for array in list(self.record["map"]["arrays"]):
            if array.get("job_id"):
                continue
            found = _read(self.folder / "arrays" / f"{array['seq']}.id")
            if not found:
                script = f"{self._there()}/arrays/{array['seq']}.sh"
                try:
                    text = self.slurm().run(["squeue", "-h", "-u", self.slurm().user(), "-o", "%F|%o"], timeout=30)
                except SchedulerError:
                    continue
                found = next((line.split("|")[0] for line in text.splitlines() if line.endswith(f"|{script}")), None)
            if found:
                array["job_id"] = found
            else:
                self.record["map"]["arrays"].remove(array)
            self._save()

    @contextmanager
    def _submit_lock(self) -> Iterator[None]:
        """One submitter at a time per map, across processes."""
        with self._lock, open(self.folder / "map-submit.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _save(self) -> None:
        self._tasks = None
        tmp = self.folder / f".{JOB_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(self.record, default=str))
        tmp.replace(self.folder / JOB_FILE)

    # -- control ----------------------------------------------------------------------------------
    def cancel(self) -> list[str]:
        """Cancel every job of the map and everything held back; returns the array ids cancelled."""
        with self._submit_lock():
            (self.folder / MAP_CANCELLED).write_text(f"{time.time()}\n")
            self._cancelled = True
            self._reload()
            self._adopt_dangling()
            ids = [a["job_id"] for a in self.record["map"]["arrays"] if a.get("job_id")]
        _push_control(self.backend, self.folder, self._there())
        if ids:
            self.slurm().run(["scancel", *ids])
            self._poller().forget()
        return ids

    def cancel_items(self, indices: list[int]) -> None:
        """Items that have not started never will (the job skips them); one running goes on."""
        with open(self.folder / CANCELLED_ITEMS, "a") as f:
            f.write("".join(f"{i}\n" for i in indices))
        _push_control(self.backend, self.folder, self._there())


def _limit_refusal(message: str) -> bool:
    """sbatch's refusal for a full queue (MaxSubmitJobs of the association or the QoS)."""
    # sbatch names the limit (QOSMaxSubmitJobPerUserLimit, AssocMaxSubmitJobLimit, QOSGrpSubmitJobsLimit) before
    # its generic "Job violates accounting/QOS policy", which other limits (time, GRES) share
    return any(text in message for text in ("MaxSubmitJob", "GrpSubmitJob"))


def _push_control(backend: Backend, local: Path, there: Path) -> None:
    """Send what the submitting side writes (arrays, the manifest, cancel marks) to the cluster's
    copy of the folder, and nothing the jobs write there (results, logs); nothing to send when the
    jobs read the folder written here."""
    rules = ("--include=arrays/***", f"--include={JOB_FILE}", f"--include={MAP_CANCELLED}", f"--include={CANCELLED_ITEMS}", "--exclude=*")
    backend.put(local, there, code=False, rules=rules)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _cancelled_items(folder: Path) -> set[int]:
    from ._packrun import cancelled_items

    return cancelled_items(folder)


def array_script(script: str, seq: int, count: int, max_parallel: int | None) -> str:
    """The map's script as array number ``seq`` of ``count`` packs."""
    throttle = f"%{max_parallel}" if max_parallel and max_parallel < count else ""
    text = re.sub(r"^(#SBATCH --job-name=.*)$", rf"\1\n#SBATCH --array=0-{count - 1}{throttle}", script, count=1, flags=re.M)
    return text.replace("export SUBMITIT_EXECUTOR=slurm", f"export SUBMITIT_EXECUTOR=slurm\nexport AIFSDK_MAP_ARRAY={seq}", 1)


# -- the handles ----------------------------------------------------------------------------------
_SWEEPS: dict[str, Sweep] = {}
_SWEEPS_LOCK = threading.Lock()


def sweep_of(folder: Path) -> Sweep:
    """The process's one Sweep per map folder."""
    key = str(folder)
    with _SWEEPS_LOCK:
        if key not in _SWEEPS:
            _SWEEPS[key] = Sweep(Path(folder))
        return _SWEEPS[key]


class Item(Job):
    """One item of a packed map: a Job whose id is ``<map id>.<index>``. ``result()`` returns the
    item's value (raises :class:`JobFailedError` with its remote traceback), ``stdout()`` and
    ``stderr()`` its own output lines, ``cancel()`` keeps it from starting."""

    @classmethod
    def _attach_own(cls, ref: str) -> Job | None:
        """``map-....<index>`` (or its folder): the item; a whole map is refused with the way to attach an item."""
        found = attach_map(ref)
        if isinstance(found, Sweep):
            raise JobNotFoundError(f"{ref} is a map of {found.n} item(s) (folder {found.folder}); attach one item as {found.id}.0 .. "
                                   f"{found.id}.{found.n - 1}, or wait for or cancel the whole map with `aifsdk wait {found.id}` / `aifsdk cancel {found.id}`")
        return found

    def __init__(self, sweep: Sweep, index: int) -> None:
        super().__init__(dict(sweep.record, job_id=f"{sweep.id}.{index}", item=index, tasks=1))
        self.sweep = sweep
        self.index = index

    @property
    def map_id(self) -> str:
        return self.sweep.id

    def _finished_tasks(self) -> set[int]:
        return {0} if self.index in self.sweep.outcomes else set()

    def _complete_in(self, names: set[str] | None) -> bool:
        return self.sweep.ended(self.index)

    def _note_scheduler(self, state: str, reason: str) -> bool:
        return False

    @property
    def state(self) -> str:
        self.sweep.tick()
        state = self.sweep.item_state(self.index)
        self._last_state = (time.monotonic(), state)
        return state

    def done(self) -> bool:
        self.sweep.tick()
        return self.sweep.ended(self.index)

    def record(self) -> dict[str, Any] | None:
        """The item's record: outcome, value or traceback, start and end times, host, job, attempt."""
        if self.index not in self.sweep.outcomes:  # a final record never changes: read files only until there is one
            self.sweep.refresh()
        return self.sweep.outcomes.get(self.index)

    def results(self, timeout: float | None = None) -> list[Any]:
        from ._job import check_timeout, wait

        check_timeout(timeout)
        rec = self.sweep.outcomes.get(self.index)
        if rec is None:
            wait([self], timeout, progress=False)
            rec = self.record()
        if rec is not None and rec["ok"]:
            from ._packrun import load_value

            return [load_value(rec)]
        raise self._failure(0, traceback=rec["error"] if rec else None)

    def _failure(self, task: int, traceback: str | None = None) -> JobFailedError:
        state = self.sweep.item_state(self.index)
        rec = self.sweep.outcomes.get(self.index)
        stdout, stderr = self.log_paths()
        if traceback:
            head = f"item {self.index} of map {self.map_id} ({self.name}, site {self.site}) raised"
            if rec and rec["attempt"] > 1:
                head += f" (attempt {rec['attempt']})"
            if rec and rec.get("log") is None:
                head = f"item {self.index} of map {self.map_id} failed: {traceback}"
        else:
            why = self.sweep._lost.get(self.index) or f"the map was cancelled before item {self.index} ran"
            head = f"item {self.index} of map {self.map_id} ({self.name}, site {self.site}) ended {state}: {why}"
        cls = JobCancelledError if state == "CANCELLED" else JobFailedError
        return cls(head, job_id=self.job_id, folder=self.folder, state=state, remote_traceback=traceback,
                   logs=[stdout, stderr], inspect=f"aifsdk logs {self.job_id}")

    def log_paths(self, task: int = 0) -> tuple[Path, Path]:
        rec = self.record()
        if rec and rec.get("log"):
            tag = rec["log"][0]
            return self.folder / "logs" / f"{tag}.out", self.folder / "logs" / f"{tag}.err"
        task_id = self.sweep.task_of(self.sweep.pack_of(self.index)) or "none"
        return self.folder / f"{task_id}_0_log.out", self.folder / f"{task_id}_0_log.err"

    def _slice(self, which: int) -> str | None:
        rec = self.record()
        if not rec or not rec.get("log"):
            return None
        tag, out0, out1, err0, err1 = rec["log"]
        path, lo, hi = (self.folder / "logs" / f"{tag}.out", out0, out1) if which == 0 else (self.folder / "logs" / f"{tag}.err", err0, err1)
        try:
            with open(path, "rb") as f:
                f.seek(lo)
                return f.read(hi - lo).decode(errors="replace")
        except OSError:
            return None

    def stdout(self, task: int = 0) -> str | None:
        """What this item printed (its slice of the worker's log), once it has ended."""
        return self._slice(0)

    def stderr(self, task: int = 0) -> str | None:
        return self._slice(1)

    def cancel(self) -> None:
        self.sweep.cancel_items([self.index])

    def requeues(self) -> list[str]:
        return []

    def resubmit(self, **changes: Any) -> Job:
        raise JobNotFoundError(f"{self.job_id} is an item of map {self.map_id}; run it again with aifsdk.map or aifsdk.submit")


def attach_map(ref: str) -> Sweep | Item | None:
    """A map by its id (``map-...``) or folder, or one item (``map-....<index>``); None if ``ref`` is neither."""
    from ._paths import lookup

    path = Path(ref).expanduser()
    if (path / "map.json").is_file():
        return sweep_of(path)
    base, _, index = ref.partition(".")
    if not base.startswith("map-"):
        return None
    for folder in lookup(base):
        if (folder / "map.json").is_file():
            sweep = sweep_of(folder)
            if not index:
                return sweep
            if index.isdigit() and int(index) < sweep.n:
                return Item(sweep, int(index))
            raise JobNotFoundError(f"map {base} has items 0 .. {sweep.n - 1}; {ref!r} is not one of them")
    return None


# -- submission -----------------------------------------------------------------------------------
def auto_pack(n: int, first: Any) -> int:
    """Items per job for pack="auto": as few jobs as fill the partition's nodes once (each job
    runs its items on all of its GPUs or cores), at least one job per node's worth of slots, and
    never more jobs than the limits let the user queue or one array may hold."""
    slurm = backend_for(first.profile).slurm()
    jobs = min(n, AUTO_MAX_JOBS)
    try:
        if slurm is not None:
            info = slurm.cluster_info()
            part = info.partitions.get(first.resources.partition or info.default_partition or "")
            nodes = info.total_nodes.get(first.resources.partition or info.default_partition or "", 1)
            if part is not None:
                gpus = first.resources.gpus_per_node or 0
                per_node = (part.gpus_per_node // gpus) if gpus and part.gpus_per_node else (
                    (part.cpus_per_node or 1) // max(1, first.resources.cpus_per_task or 1))
                jobs = min(jobs, max(1, nodes * max(1, per_node)))
            limit, _ = slurm.map_limit(first.resources.account, first.resources.qos)
            jobs = min(jobs, chunk_cap(slurm), *( [limit] if limit else []))
    except SchedulerError:
        pass
    if first.profile.max_submit_jobs:
        jobs = min(jobs, first.profile.max_submit_jobs)
    return max(1, math.ceil(n / max(1, jobs)))


def submit_packed(first: Any, target: Any, items: list[Any], *, command: bool, pack: int | str, retries: int,
                  items_per_worker: int | str, cores_per_worker: int, max_parallel: int | None) -> list[Item]:
    """Write the map's folder, submit what the limits allow (the rest is held back), return the items."""
    import cloudpickle

    from ._launch import _take_snapshot, job_record, make_job_folder, refuse_wrong_cluster
    from ._planner import run_command
    from ._run import sha256_file

    n = len(items)
    size = auto_pack(n, first) if pack == "auto" else int(pack)
    packs = [[s, min(size, n - s)] for s in range(0, n, size)]
    refuse_wrong_cluster(first)
    backend = backend_for(first.profile)
    local = backend.staging(first.folder)  # over SSH: written here, pushed before sbatch
    make_job_folder(first, local)
    snap = _take_snapshot(first, local)
    with open(local / TARGET_FILE, "wb") as f:
        cloudpickle.dump(target, f)
    with open(local / ITEMS_FILE, "wb") as f:
        cloudpickle.dump(items, f)
    (local / HASH_FILE).write_text("".join(f"{sha256_file(local / name)}  {name}\n" for name in (TARGET_FILE, ITEMS_FILE)))
    spec = {"n": n, "pack": size, "packs": packs, "retries": retries, "kind": "command" if command else "function",
            "auto": pack == "auto", "time_minutes": first.time_minutes,
            "items_per_worker": items_per_worker, "cores_per_worker": cores_per_worker}
    (local / "map.json").write_text(json.dumps(spec))
    for sub in ("results", "logs", "arrays"):
        (local / sub).mkdir(mode=0o700)
    script = first.script.replace(run_command("__PY__", first.folder).split(" ", 1)[1], f"-u -m aifsdk._packrun {_quote(first.folder)}")
    script = script.replace(f"{first.folder}/%j_", f"{first.folder}/%A_%a_")
    map_id = new_map_id()
    record = job_record(first, map_id, snap, folder=local)
    record["kind"] = f"map of {spec['kind']}s"
    record["map"] = {"id": map_id, "items": n, "pack": size, "packs": len(packs), "retries": retries, "max_parallel": max_parallel,
                     "arrays": [], "again": [], "script": script, "profile_max_submit_jobs": first.profile.max_submit_jobs}
    record.update(backend.manifest_entries(first.folder))
    (local / JOB_FILE).write_text(json.dumps(record, default=str))
    register(first.site, map_id, local)
    sweep = sweep_of(local)
    sweep.submit_more()
    if not sweep.record["map"]["arrays"]:
        held = len(sweep.held_back())
        print(f"aifsdk: map {map_id}: the user's queue is full (limits); all {held} job(s) held back, submitted as queued jobs end "
              f"while the map is waited on (aifsdk wait {map_id})", file=sys.stderr)
    return sweep.items()


def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))
