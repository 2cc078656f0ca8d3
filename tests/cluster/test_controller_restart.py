"""slurmctld killed (SIGKILL, a crash) and started again while `aifsdk.wait`, `Job.state` and
`Job.done()` are polled, each in a thread of its own, on the real local cluster. Every poll
answers (no SchedulerError reaches the caller); while the controller is down, the state comes from
the job's files and what was seen before, and `state_note` says it may be old; once it is back,
the note is gone, and every job's result comes back.

Each step waits for what it needs to see, not for a time: the jobs end only when the test creates
their gate file; the controller is killed only once it has saved the running jobs to its state
file, and started again only once both pollers have answered with the controller down. The test
holds the cluster alone (marked exclusive) and starts the controller again whatever happens."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import aifsdk
from aifsdk._backends import poller

from jobfns import when_file

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]
REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "tests" / "cluster" / "slurm-cluster"
JOB_STATE = Path("/var/spool/slurm-aifsdk/ctld/job_state")  # slurmctld's saved jobs (StateSaveLocation)
LIMIT_S = 120  # how long any one condition may take before the test gives up (a safety net, not a figure)


def cluster(command: str) -> None:
    subprocess.run(["bash", str(CLUSTER), command], check=True, capture_output=True, text=True, timeout=120)


def until(check: Callable[[], Any], what: str, threads: tuple[Any, ...] = ()) -> Any:
    """Wait for ``check`` to hold; fail at once when a poll of one of ``threads`` raised."""
    deadline = time.monotonic() + LIMIT_S
    while time.monotonic() < deadline:
        failed = [exc for t in threads for exc in t.errors]
        if failed:
            raise AssertionError(f"a poll raised while waiting for {what}: {failed[0]!r}") from failed[0]
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not seen within {LIMIT_S} s")


class Polling(threading.Thread):
    """Calls ``ask`` again and again; keeps every answer (or exception) with the job's state note."""

    def __init__(self, job: aifsdk.Job, ask: Callable[[aifsdk.Job], Any]) -> None:
        super().__init__(daemon=True)
        self.job, self.ask = job, ask
        self.answers: list[tuple[Any, str]] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.answers.append((self.ask(self.job), self.job.state_note))
            except BaseException as exc:  # noqa: BLE001 - every failure of a poll is what the test looks for
                self.errors.append(exc)
            time.sleep(0.1)

    def since(self, start: int) -> list[tuple[Any, str]]:
        return self.answers[start:]


class Waiting(threading.Thread):
    def __init__(self, job: aifsdk.Job) -> None:
        super().__init__(daemon=True)
        self.job = job
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            aifsdk.wait([self.job])
        except BaseException as exc:  # noqa: BLE001
            self.errors.append(exc)


@pytest.fixture
def controller_restored() -> Iterator[None]:
    """The test is marked exclusive: it holds /tmp/aifsdk-cluster.lock alone (tests/conftest.py)."""
    try:
        yield
    finally:
        try:
            cluster("ctld-start")  # nothing to do when it runs
        except subprocess.CalledProcessError:
            subprocess.run(["bash", str(CLUSTER), "up"], capture_output=True, timeout=600)


@pytest.mark.exclusive
def test_wait_state_and_done_answer_through_a_controller_crash(tmp_path: Path, controller_restored: None) -> None:
    gate = tmp_path / "gate"
    jobs = [aifsdk.submit(when_file, str(gate), f"result-{i}", site="slurm", time="15min", name=f"ctld-crash-{i}") for i in range(3)]
    threads: tuple[Any, ...] = ()
    try:
        def all_running() -> bool:
            poller().forget()
            return all(j.state == "RUNNING" for j in jobs)

        until(all_running, "the three jobs running")
        seen_running = time.time()
        until(lambda: JOB_STATE.stat().st_mtime > seen_running, "slurmctld saving the running jobs to its state file")

        waiting = Waiting(jobs[0])
        state = Polling(jobs[1], lambda j: j.state)
        done = Polling(jobs[2], lambda j: j.done())
        threads = (waiting, state, done)
        for t in threads:
            t.start()
        until(lambda: state.answers and done.answers, "a first answer of each poller", threads)
        assert state.answers[-1] == ("RUNNING", "") and done.answers[-1] == (False, ""), (state.answers[-1], done.answers[-1])

        cluster("ctld-kill")
        down_state, down_done = len(state.answers), len(done.answers)
        with pytest.raises(aifsdk.SchedulerError):
            aifsdk._scheduler.default_slurm().queue()  # the controller really does not answer
        until(lambda: any("may be old" in note for _, note in state.since(down_state)), "Job.state answering with the controller down", threads)
        until(lambda: any("may be old" in note for _, note in done.since(down_done)), "Job.done() answering with the controller down", threads)
        assert not waiting.errors and waiting.is_alive(), waiting.errors

        cluster("ctld-start")
        up_state, up_done = len(state.answers), len(done.answers)
        until(lambda: ("RUNNING", "") in state.since(up_state), "Job.state from the controller again", threads)
        until(lambda: (False, "") in done.since(up_done), "Job.done() from the controller again", threads)
        old = [a for a in state.since(down_state)[: up_state - down_state] if a[1]]
        assert old and all(s == "RUNNING" and "did not answer" in note for s, note in old), old
        assert all(d is False for d, note in done.since(down_done)[: up_done - down_done]), "a job counted done while it ran"

        gate.touch()  # the jobs end now
        waiting.join(LIMIT_S)
        until(lambda: done.answers and done.answers[-1][0] is True, "Job.done() true once the job ended", threads)
        until(lambda: state.answers and state.answers[-1][0] in ("COMPLETING", "COMPLETED"), "Job.state ended", threads)
    finally:
        gate.touch()
        for t in threads:
            if isinstance(t, Polling):
                t.stop.set()
            t.join(LIMIT_S)
    assert not waiting.is_alive() and not waiting.errors, waiting.errors
    assert state.errors == [] and done.errors == [], state.errors + done.errors  # every poll answered
    assert [j.result(timeout=LIMIT_S) for j in jobs] == ["result-0", "result-1", "result-2"]
