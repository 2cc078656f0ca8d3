"""The job-side entry point: check the submitted payload, then hand over to submitit's runner.

    python -u -m aifsdk._run <job folder>

The payload (the pickled target and arguments) is hashed at submit time into
``<folder>/payload.sha256``. A payload changed after submission fails the job with a clear error
instead of being unpickled, since unpickling runs code. The code snapshot is then put into
``<folder>/code`` before any of it is imported: hard links to the store's one extracted copy of the
snapshot, made (and checked against its digests) by the first job of it, see :mod:`aifsdk._pack`.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from submitit.core import utils as _submitit_utils

from ._errors import AifsdkError

PAYLOAD_HASH_FILE = "payload.sha256"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_hash(payload: Path) -> None:
    """Write ``payload.sha256`` next to a payload (at submit, and when a checkpoint replaces it).
    An array task's payload (aifsdk.map) has its own ``<payload>.sha256``."""
    own = payload.parent / f"{payload.name}.sha256"
    (own if own.exists() else payload.parent / PAYLOAD_HASH_FILE).write_text(f"{sha256_file(payload)}  {payload.name}\n")


class DelayedSubmission(_submitit_utils.DelayedSubmission):
    """What a checkpoint returns: submitit writes it over the payload before the requeue, and this
    records the new payload's hash as it is written, so the requeued job passes the check.
    (It keeps submitit's class name: submitit's loader checks the name of what it unpickles.)"""

    def dump(self, filepath: str | Path) -> None:
        super().dump(filepath)
        record_hash(Path(filepath))


def verify(folder: Path, job_id: str, wait_s: float = 60.0) -> str | None:
    """None if the payload is the one submitted, else why not."""
    from submitit.core.utils import JobPaths

    pickle = JobPaths(folder, job_id).submitted_pickle
    deadline = time.monotonic() + wait_s
    while not pickle.exists() and time.monotonic() < deadline:  # submitit renames it after sbatch
        time.sleep(0.2)
    expected_file = folder / PAYLOAD_HASH_FILE
    if (folder / f"{pickle.name}.sha256").exists():  # an array task (aifsdk.map)
        expected_file = folder / f"{pickle.name}.sha256"
    if not expected_file.exists():
        return f"{expected_file} is missing: the job folder was tampered with or not made by aifsdk"
    if not pickle.exists():
        return f"the payload {pickle} never appeared"
    expected = expected_file.read_text().split()[0]
    actual = sha256_file(pickle)
    if actual != expected:
        return f"the payload {pickle} changed after submission (sha256 {actual[:16]}..., submitted {expected[:16]}...); refusing to load it"
    return None


def main() -> None:
    import faulthandler

    faulthandler.enable()  # a task killed by a fatal signal names it in its log (the client reads it from there)
    folder = Path(sys.argv[1])
    from submitit.core import job_environment

    os.environ["SUBMITIT_FOLDER"] = str(folder)
    env = job_environment.JobEnvironment()
    problem, kind = verify(folder, env.job_id), "PayloadChanged"
    if problem is None:
        problem, kind = extract_code(folder)
    if problem:
        print(f"aifsdk: {problem}", file=sys.stderr, flush=True)
        paths = env.paths
        if env.global_rank == 0 or not paths.result_pickle.exists():
            save_result(paths.result_pickle, ("error", f"aifsdk.{kind}: {problem}"))
        sys.exit(1)
    process_job(folder)


def process_job(folder: Path) -> None:
    """submitit's job runner, step for step (load the payload, handle the checkpoint signals, run
    it, save the result or the traceback; the same log lines), without the ``import numpy`` that
    submitit's ``submission`` module does first (0.1 s per task; a payload holding numpy objects
    still imports it while unpickling)."""
    import traceback

    from submitit.core import job_environment, utils
    from submitit.core.logger import get_logger

    env = job_environment.JobEnvironment()
    paths, logger = env.paths, get_logger()
    logger.info(f"Starting with {env}")
    logger.info(f"Loading pickle: {paths.submitted_pickle}")
    try:
        delayed = utils.DelayedSubmission.load(paths.submitted_pickle)
        env = job_environment.JobEnvironment()
        env._handle_signals(paths, delayed)
        result = delayed.result()
        logger.info("Job completed successfully")
        del delayed
        try:
            save_result(paths.result_pickle, ("success", result))
        except Exception as exc:
            raise ResultNotWritten(_not_written(paths.result_pickle, exc)) from exc
        del result
        logger.info("Exiting after successful completion")
    except Exception as error:
        try:
            save_result(paths.result_pickle, ("error", traceback.format_exc()))  # small: it may fit where the result did not
        except Exception as dump_error:
            logger.error(f"Could not dump error:\n{error}\n\nbecause of {dump_error}")
        logger.error("Submitted job triggered an exception")
        raise


class ResultNotWritten(AifsdkError, RuntimeError):
    """The task returned, but its result could not be written (a full disk, a quota, permissions)."""


def save_result(path: Path, outcome: tuple) -> None:
    """Write a task's (outcome, value) under a temporary name next to ``path``, then move it into
    place: readers never see half a file, and a failed write leaves no file behind."""
    from submitit.core import utils

    tmp = path.with_suffix(path.suffix + ".save_tmp")
    try:
        utils.cloudpickle_dump(outcome, tmp)  # truncates what an earlier, killed write left
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _not_written(path: Path, exc: BaseException) -> str:
    import shutil

    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MB free there"
    except OSError:
        free = "free space unknown"
    return (f"the task returned, but its result could not be written to {path} ({type(exc).__name__}: {exc}; {free}); "
            "the result is lost. Free space on that filesystem (or use a job_root on a larger one), then run the job again")


def extract_code(folder: Path) -> tuple[str | None, str]:
    """Put the job's code snapshot into ``<folder>/code`` (links to the store's checked tree) before
    anything imports from it (once per job folder); (None, "") when done, else (what went wrong, the
    error's name)."""
    from ._pack import SnapshotIntegrityError, materialise

    try:
        extracted = materialise(folder)
    except SnapshotIntegrityError as exc:
        return str(exc), "SnapshotCorrupt"
    except OSError as exc:
        return f"could not extract the code snapshot into {folder / 'code'}: {exc}", "SnapshotNotExtracted"
    if extracted or (folder / "code").is_dir():
        import importlib

        # sys.path entries under code/ may have been looked at before they existed (remembered as absent)
        for path in [p for p, finder in sys.path_importer_cache.items() if finder is None]:
            del sys.path_importer_cache[path]
        importlib.invalidate_caches()
    return None, ""


if __name__ == "__main__":
    main()
