"""The submitit internals aifsdk overrides or relies on still have the shape aifsdk was written for.

aifsdk subclasses submitit's executors and replaces private hooks: the sbatch text
(``_make_submission_file_text``), the submit step (``_submit_command``, to hash the payload
submitit has just dumped), the local runner's command (``_submitit_command_str``), the ssh sbatch
(``_make_submission_command``, ``affinity``), the spacing between submissions (``_throttling``),
and it runs a copy of submitit's job runner (``submission.process_job``, see aifsdk/_run.py).
pyproject.toml pins submitit to the versions these were checked against. This test fails when the
installed submitit is outside that range, when a hook is gone or takes other arguments, when the
source of a function aifsdk copied or depends on step by step changed (then compare the new
source with aifsdk's use and update the fingerprint), or when the hooks no longer take effect.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import operator
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import submitit
import tomllib
from packaging.requirements import Requirement
from submitit.core import core, job_environment, submission, utils

REPO = Path(__file__).resolve().parents[2]

# sha256 of inspect.getsource(...) in submitit 1.5.4 (1.5.1 to 1.5.3 differ in _internal_process_submissions or _submit_command)
FINGERPRINTS = {
    "submitit.core.submission.process_job": "093b987c74d4a0f2d09dbfb5e50b8986a5ce1b1ca78d572dfcfc7756ceaf434d",
    "submitit.core.core.PicklingExecutor._internal_process_submissions": "ecea893a12f9b23629f40ee1d2858f75a68edb411f1192facc73e206f99b0023",
    "submitit.core.core.PicklingExecutor._submit_command": "286fa2f9891c2863550c22f539110636ad25c05d65c4ca8f663aba50c55969e3",
    "submitit.core.core.PicklingExecutor._throttle": "348039043d377f04a17107200d826fafec4ef5c97c3f1abd48562415fc62b816",
}

SIGNATURES = {
    (submitit.SlurmExecutor, "_make_submission_file_text"): ["self", "command", "uid"],
    (submitit.SlurmExecutor, "_make_submission_command"): ["self", "submission_file_path"],
    (submitit.SlurmExecutor, "_submit_command"): ["self", "command"],
    (submitit.SlurmExecutor, "__init__"): ["self", "folder", "max_num_timeout", "max_pickle_size_gb", "python"],
    (submitit.LocalExecutor, "_submit_command"): ["self", "command"],
    (submitit.LocalExecutor, "__init__"): ["self", "folder", "max_num_timeout", "max_pickle_size_gb", "python"],
    (utils.DelayedSubmission, "dump"): ["self", "filepath"],
    (utils.DelayedSubmission, "set_timeout"): ["self", "timeout_min", "max_num_timeout"],
    (job_environment.JobEnvironment, "_handle_signals"): ["self", "paths", "submission"],
}


def _source_of(dotted: str) -> str:
    module, _, rest = dotted.partition(".core.")
    obj: Any = {"submission": submission, "core": core}[rest.split(".")[0]]
    for part in rest.split(".")[1:]:
        obj = getattr(obj, part)
    return inspect.getsource(obj)


def test_installed_submitit_is_in_the_pinned_range() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (req,) = [Requirement(d) for d in deps if Requirement(d).name == "submitit"]
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in req.specifier), f"{req}: no upper bound"
    installed = importlib.metadata.version("submitit")
    assert req.specifier.contains(installed), f"submitit {installed} is outside the tested range {req.specifier}"


@pytest.mark.parametrize("dotted", sorted(FINGERPRINTS))
def test_copied_and_relied_on_functions_are_unchanged(dotted: str) -> None:
    digest = hashlib.sha256(_source_of(dotted).encode()).hexdigest()
    assert digest == FINGERPRINTS[dotted], (f"{dotted} changed in submitit {importlib.metadata.version('submitit')}: compare it with "
                                            "aifsdk's copy or use (aifsdk/_run.py process_job, the executors' overrides), then update "
                                            "the fingerprint here and the pin in pyproject.toml")


@pytest.mark.parametrize(("owner", "name"), sorted(SIGNATURES, key=lambda k: (k[0].__name__, k[1])), ids=lambda x: getattr(x, "__name__", x))
def test_overridden_hooks_exist_with_their_arguments(owner: type, name: str) -> None:
    assert [p for p in inspect.signature(getattr(owner, name)).parameters] == SIGNATURES[(owner, name)]


def test_other_members_aifsdk_uses_exist() -> None:
    assert isinstance(inspect.getattr_static(submitit.LocalExecutor, "_submitit_command_str"), property)
    assert isinstance(inspect.getattr_static(submitit.SlurmExecutor, "affinity"), classmethod)
    assert isinstance(inspect.getattr_static(utils.DelayedSubmission, "load"), classmethod)
    assert re.search(r"self\._throttling\b", inspect.getsource(core.PicklingExecutor._throttle))
    for name in ("FailedJobError", "FailedSubmissionError", "DelayedSubmission", "JobPaths", "pickle_load", "cloudpickle_dump",
                 "temporary_save_path", "CommandFunction"):
        assert hasattr(utils, name), name
    for name in ("submitted_pickle", "result_pickle", "submission_file", "folder", "move_temporary_file", "get_first_id_independent_folder"):
        assert hasattr(utils.JobPaths, name), name
    assert importlib.util.find_spec("submitit.local._local")  # aifsdk tells a running local job by this module in its command line
    assert callable(importlib.import_module("submitit.core.logger").get_logger)


class _Recording(submitit.LocalExecutor):
    """The override aifsdk makes: at _submit_command, the payload has been dumped and not yet moved."""

    seen: list[list[str]] = []

    @property
    def _submitit_command_str(self) -> str:
        return super()._submitit_command_str

    def _submit_command(self, command: str) -> Any:
        type(self).seen.append(sorted(p.name for p in utils.JobPaths.get_first_id_independent_folder(self.folder).glob("*.pkl")))
        return super()._submit_command(command)


def test_submit_command_sees_the_dumped_payload_and_the_job_runs(tmp_path: Path) -> None:
    ex = _Recording(tmp_path)
    assert ex._throttling == pytest.approx(0.2)
    ex._throttling = 0.0
    ex.update_parameters(timeout_min=2)
    job = ex.submit(operator.add, 2, 3)  # importable by the job process
    assert job.result() == 5
    (pending,) = _Recording.seen
    assert len(pending) == 1 and re.fullmatch(r"[0-9a-f]{32}\.pkl", pending[0])


@pytest.mark.skipif(shutil.which("srun") is None, reason="submitit's SlurmExecutor needs srun on PATH (the local cluster provides it)")
def test_the_sbatch_text_is_the_one_the_override_returns(tmp_path: Path) -> None:
    """aifsdk's sbatch text replaces submitit's: the file handed to the submission command holds it byte for byte."""
    handed: list[str] = []

    class Planned(submitit.SlurmExecutor):
        def _make_submission_file_text(self, command: str, uid: str) -> str:
            return "#!/bin/bash\n# the plan's own script\n"

        def _make_submission_command(self, submission_file_path: Path) -> list[str]:
            handed.append(Path(submission_file_path).read_text())
            return ["echo", "Submitted batch job 4242"]  # a real process standing in for sbatch: nothing is queued

    ex = Planned(tmp_path)
    ex._throttling = 0.0
    job = ex.submit(operator.add, 1, 1)
    assert job.job_id == "4242" and handed == ["#!/bin/bash\n# the plan's own script\n"]
    assert job.paths.submission_file.read_text() == handed[0]
