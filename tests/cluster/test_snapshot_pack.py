"""Packed code snapshots on the real local Slurm cluster: the job extracts its code on the node.

Nothing here is faked: the store is written at submit, the held job is released, and the job
itself (on n1 or n2) extracts and checks its snapshot into the store's tree (the first job of a
snapshot) and links its code/ to it before importing from it.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import aifsdk

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "packproj"
    root.mkdir()
    (root / "packmod.py").write_text("def which():\n    return 'submitted'\n")
    (root / "helper.py").write_text("VALUE = 1\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(root)
    sys.modules.pop("packmod", None)
    yield root
    sys.modules.pop("packmod", None)


def _corrupt(job: aifsdk.Job, name: str) -> None:
    """Flip one byte of ``name``'s object in the pack its job reads (what a tampered store looks like)."""
    ref = json.loads((job.folder / "snapshot.json").read_text())
    store = Path(os.path.normpath(job.folder / ref["store"]))
    manifest = json.loads((store / "snapshots" / f"{ref['digest']}.json").read_text())
    _, _, _, pack, offset, _ = next(f for f in manifest["files"] if f[0] == name)
    path = store / "packs" / pack
    path.chmod(0o600)
    with open(path, "r+b") as f:
        f.seek(offset + 3)
        byte = f.read(1)
        f.seek(offset + 3)
        f.write(bytes([byte[0] ^ 0x20]))


def test_a_corrupt_pack_byte_fails_the_job_naming_the_file(project: Path) -> None:
    packmod = importlib.import_module("packmod")
    job = aifsdk.submit(packmod.which, site="slurm", time=5, extra={"hold": True})
    assert not (job.folder / "code" / "packmod.py").exists()  # extracted on the node, not at submit
    _corrupt(job, "packmod.py")
    subprocess.run(["scontrol", "release", job.job_id], check=True)
    with pytest.raises(aifsdk.JobFailedError) as info:
        job.result(timeout=120)
    text = str(info.value)
    assert "SnapshotCorrupt" in text and "packmod.py" in text and "does not match the submitted file" in text
    again = aifsdk.submit(packmod.which, site="slurm", time=5)  # set aside: the same tree is stored anew
    assert again.result(timeout=120) == "submitted"


def test_tasks_on_two_nodes_extract_once_and_a_requeue_finds_it_done(project: Path) -> None:
    """Two tasks on two nodes share one job folder: one extracts under the lock, the other finds it
    complete; the completion mark names the snapshot the job was submitted with."""
    (project / "run.py").write_text("import packmod, os\nprint('task', os.environ.get('SLURM_PROCID'), packmod.which())\n")
    job = aifsdk.submit([sys.executable, "run.py"], site="slurm", nodes=2, time=5)
    res = job.result(timeout=180)
    assert res.exit_code == 0 and "submitted" in res.stdout
    digest = job.manifest()["snapshot"]["sha256"]
    assert (job.folder / ".code-complete").read_text().split()[0] == digest
    assert (job.folder / "code" / "run.py").read_text() == (project / "run.py").read_text()


def test_a_second_job_of_the_same_snapshot_links_from_the_tree(project: Path) -> None:
    """Two jobs of an unchanged tree, each started by Slurm on a node: the first extracts the
    snapshot into the store's tree, and both jobs' files are hard links to that tree's files."""
    packmod = importlib.import_module("packmod")
    first = aifsdk.submit(packmod.which, site="slurm", time=5)
    assert first.result(timeout=120) == "submitted"
    second = aifsdk.submit(packmod.which, site="slurm", time=5)
    assert second.result(timeout=120) == "submitted"
    ref = json.loads((second.folder / "snapshot.json").read_text())
    tree = Path(os.path.normpath(second.folder / ref["store"])) / "trees" / ref["digest"] / "files"
    inodes = {(f / "code" / "packmod.py").stat().st_ino for f in (first.folder, second.folder)}
    assert inodes == {(tree / "packmod.py").stat().st_ino}
    assert (tree / "packmod.py").stat().st_nlink >= 3 and not (tree / "packmod.py").stat().st_mode & 0o222
