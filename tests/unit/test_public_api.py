"""The public surface is small and frozen: a change here is a deliberate API change."""

from __future__ import annotations

import subprocess
import sys

import aifsdk

EXPECTED = [
    "AifsdkError", "CommandResult", "Cost", "Job", "JobCancelledError", "JobError", "JobFailedError",
    "JobNotFoundError", "JobTimeoutError", "Plan", "Problem", "ProfileError", "RequestError", "Resources",
    "SchedulerError", "SiteNotFoundError", "SiteProfile", "__version__", "distributed", "load_site", "plan", "submit",
]


def test_all_is_frozen() -> None:
    assert sorted(aifsdk.__all__) == sorted(EXPECTED)
    for name in aifsdk.__all__:
        assert hasattr(aifsdk, name), name


def test_nothing_public_is_exported_by_accident() -> None:
    public = {n for n in dir(aifsdk) if not n.startswith("_")}
    submodules = {"cli"}
    typing_helpers = {"Any", "Callable", "Sequence", "annotations"}
    assert public - set(EXPECTED) - submodules - typing_helpers == set()


def test_error_tree() -> None:
    assert issubclass(aifsdk.RequestError, aifsdk.AifsdkError) and issubclass(aifsdk.RequestError, ValueError)
    assert issubclass(aifsdk.SiteNotFoundError, aifsdk.RequestError)
    assert issubclass(aifsdk.ProfileError, ValueError)
    assert issubclass(aifsdk.JobCancelledError, aifsdk.JobFailedError)
    assert issubclass(aifsdk.JobFailedError, aifsdk.JobError)
    assert issubclass(aifsdk.JobTimeoutError, TimeoutError)
    assert issubclass(aifsdk.JobNotFoundError, LookupError)
    for name in EXPECTED:
        obj = getattr(aifsdk, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, aifsdk.AifsdkError), name


def test_import_needs_no_torch() -> None:
    code = "import sys, aifsdk; aifsdk.plan(print, 1); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
