"""The public surface is small and frozen: a change here is a deliberate API change."""

from __future__ import annotations

import subprocess
import sys

import aifsdk

EXPECTED = [
    "AifsdkError", "CommandResult", "Cost", "Job", "JobCancelledError", "JobError", "JobFailedError",
    "JobNotFoundError", "JobTimeoutError", "Measurement", "Plan", "Problem", "ProfileError", "RequestError", "Resources",
    "SchedulerError", "SiteNotFoundError", "SiteProfile", "Sizing", "SnapshotOptions", "StorageError", "__version__", "afterany", "afterok", "distributed",
    "load_site", "map", "measure", "plan", "size", "submit", "wait",
]


def test_all_is_frozen() -> None:
    assert sorted(aifsdk.__all__) == sorted(EXPECTED)
    for name in aifsdk.__all__:
        assert hasattr(aifsdk, name), name


def test_nothing_public_is_exported_by_accident() -> None:
    public = {n for n in dir(aifsdk) if not n.startswith("_")}
    submodules = {"cli", "hydra"}  # public modules: `aifsdk` command, Hydra support (aifsdk.hydra.__all__)
    typing_helpers = {"Any", "Callable", "Sequence", "annotations"}
    assert public - set(EXPECTED) - submodules - typing_helpers == set()


def test_hydra_module_is_small() -> None:
    import aifsdk.hydra

    assert sorted(aifsdk.hydra.__all__) == ["options", "register"]


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


NO_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not installed (blocked by the test)")
sys.meta_path.insert(0, NoTorch())
"""


def test_submit_works_where_torch_cannot_be_imported() -> None:
    """A login node or laptop without torch: import, plan and a local job must all work."""
    code = NO_TORCH + (
        "import aifsdk\n"
        "print(aifsdk.plan(['echo', 'x'], site='slurm').resources.nodes)\n"
        "print(aifsdk.submit(['echo', 'x']).result(timeout=60).exit_code)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "0", "False"]
