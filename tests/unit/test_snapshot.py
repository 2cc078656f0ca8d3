"""Code snapshots on real files and real git: what is shipped, what is refused, what is stored once."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import aifsdk


def make_project(root: Path, version: str = "v1", git: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "projmod.py").write_text(f"def which():\n    return {version!r}\n")
    (root / "train.py").write_text("import projmod, sys\nprint('running', projmod.which())\nsys.exit(0)\n")
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "notes.txt").write_text("small\n")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        (root / ".gitignore").write_text("ignored.txt\n")
        (root / "ignored.txt").write_text("not shipped\n")
        subprocess.run(["git", "-C", str(root), "add", "projmod.py", "train.py", ".gitignore"], check=True)
        subprocess.run(["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"], check=True)
    return root


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path / "proj")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(root)
    sys.modules.pop("projmod", None)
    yield root
    sys.modules.pop("projmod", None)


def test_git_tree_files_are_shipped_and_ignored_ones_not(project: Path) -> None:
    plan = aifsdk.plan(["python", "train.py"])
    files = set(plan.snapshot.files)  # type: ignore[union-attr]
    assert {"projmod.py", "train.py", ".gitignore", "data/notes.txt"} <= files  # tracked + untracked-not-ignored
    assert "ignored.txt" not in files
    (project / ".aifsdkignore").write_text("data/\n")
    assert "data/notes.txt" not in aifsdk.plan(["python", "train.py"]).snapshot.files  # type: ignore[union-attr]


def test_job_runs_the_code_as_submitted_not_as_edited(project: Path) -> None:
    projmod = importlib.import_module("projmod")
    plan = aifsdk.plan(projmod.which)
    assert plan.pythonpath == [str(plan.folder / "code")]
    job = plan.submit()
    (project / "projmod.py").write_text("def which():\n    return 'v2'\n")  # edited right after submit
    assert job.result(timeout=60) == "v1"
    cmd = aifsdk.submit(["python", "train.py"])
    (project / "train.py").unlink()  # deleted right after submit
    res = cmd.result(timeout=60)
    assert "running v2" in res.stdout.read_text()  # the edit made before this submission is what ran


def test_unchanged_tree_is_stored_once(project: Path) -> None:
    a = aifsdk.submit(["true"])
    b = aifsdk.submit(["true"])
    a.result(timeout=60), b.result(timeout=60)
    import json

    ra = json.loads((a.folder / "aifsdk-job.json").read_text())["snapshot"]
    rb = json.loads((b.folder / "aifsdk-job.json").read_text())["snapshot"]
    assert ra["sha256"] == rb["sha256"] and ra["new_bytes_stored"] > 0 and rb["new_bytes_stored"] == 0
    assert os.stat(a.folder / "code" / "projmod.py").st_ino == os.stat(b.folder / "code" / "projmod.py").st_ino
    assert ra["git_commit"] and len(ra["git_commit"]) == 40


@pytest.mark.parametrize("name, content, why", [
    # secret-looking contents are assembled at run time, so that this file itself holds none
    (".env", "DB_PASS" + "WORD=hunter22\n", "dotenv"),
    ("deploy/id_ed25519", "x\n", "SSH private key"),
    ("config.py", "HF = 'hf_" + "a" * 34 + "'\n", "Hugging Face token"),
    ("settings.ini", "pass" + "word = s3cr3t-value\n", "password or secret"),
    ("keys.txt", "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nabc\n", "private key"),
    ("cloud.cfg", "key=AKIA" + "ABCDEFGHIJKLMNOP" + "\n", "AWS access key"),
    ("ci.yml", "token: gh" + "p_" + "c" * 36 + "\n", "GitHub token"),
    ("ci2.yml", "token: github" + "_pat_" + "d" * 40 + "\n", "GitHub fine-grained token"),
    ("maps.js", "const k = 'AI" + "za" + "e" * 35 + "';\n", "Google API key"),
    ("bot.py", "SLACK = 'xo" + "xb-" + "1234567890-abc'\n", "Slack token"),
    ("llm.py", "OPENAI = 's" + "k-" + "F" * 40 + "'\n", "API secret key"),
])
def test_secret_guard_refuses_before_anything_is_written(project: Path, name: str, content: str, why: str) -> None:
    path = project / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.submit(["true"])
    problem = next(p for p in info.value.problems if p.param == "snapshot")
    assert problem.value == name and why in problem.fix
    assert not any((Path(os.environ["AIFSDK_JOB_ROOT"]) / "local").glob("*"))  # no job folder was made
    allowed = aifsdk.SnapshotOptions(allow=(name,))
    assert aifsdk.submit(["true"], snapshot=allowed).result(timeout=60).exit_code == 0


def test_size_guard_lists_the_biggest_files(project: Path) -> None:
    (project / "data" / "weights.ckpt").write_bytes(b"\0" * (3 * 2**20))
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.plan(["true"])
    assert "data/weights.ckpt (3.0 MB)" in str(info.value) and ".aifsdkignore" in str(info.value)
    small = aifsdk.SnapshotOptions(max_mb=0.0001)
    (project / "data" / "weights.ckpt").unlink()
    with pytest.raises(aifsdk.RequestError, match="under 0.0001 MB"):
        aifsdk.plan(["true"], snapshot=small)


def test_snapshot_off_and_other_root(project: Path, tmp_path: Path) -> None:
    assert aifsdk.plan(["true"], snapshot=False).snapshot is None
    other = make_project(tmp_path / "other", git=False)
    plan = aifsdk.plan(["true"], snapshot=str(other))
    assert plan.snapshot is not None and plan.snapshot.root == other.resolve()
    assert "ignored.txt" not in plan.snapshot.files and "projmod.py" in plan.snapshot.files


def test_manifest_and_resubmit_run_the_same_snapshot(project: Path) -> None:
    projmod = importlib.import_module("projmod")
    job = aifsdk.submit(projmod.which, name="orig", time=7)
    assert job.result(timeout=60) == "v1"
    (project / "projmod.py").write_text("def which():\n    return 'v2'\n")
    m = job.manifest()
    assert m["schema"] == 2 and m["site"] == "local" and m["resources"]["time"] == "00:07:00"
    assert len(m["payload_sha256"]) == 64 and len(m["script_sha256"]) == 64
    assert m["snapshot"]["git_commit"] and m["environment"]["python"] == sys.version.split()[0]
    assert any(p.startswith("submitit==") for p in m["environment"]["packages"])
    again = job.resubmit()
    assert again.job_id != job.job_id and again.folder != job.folder
    assert again.result(timeout=60) == "v1"  # the old snapshot, not the edited working copy
    assert again.manifest()["snapshot"]["sha256"] == m["snapshot"]["sha256"]
    assert again.manifest()["resources"]["time"] == "00:07:00"


def test_cli_show_and_resubmit_a_command(project: Path) -> None:
    job = aifsdk.submit(["python", "train.py"])
    job.result(timeout=60)
    (project / "projmod.py").write_text("def which():\n    return 'v3'\n")
    show = subprocess.run([sys.executable, "-m", "aifsdk", "show", job.job_id], capture_output=True, text=True, check=True)
    assert json.loads(show.stdout)["job_id"] == job.job_id
    out = subprocess.run([sys.executable, "-m", "aifsdk", "resubmit", job.job_id], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    new = aifsdk.Job.attach(out.stdout.strip())
    assert "running v1" in new.result(timeout=60).stdout.read_text()


def test_job_folders_are_private(project: Path) -> None:
    job = aifsdk.submit(["true"])
    job.result(timeout=60)
    import stat

    assert stat.S_IMODE(job.folder.stat().st_mode) == 0o700


def test_repository_with_several_secrets_names_each(project: Path) -> None:
    (project / "deploy").mkdir()
    (project / "deploy" / "key.txt").write_text("-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE\n")
    (project / ".env").write_text("S3_BUCKET=x\n")
    (project / "config.yaml").write_text("hub_token: hf_" + "b" * 34 + "\n")
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.plan(["true"])
    named = {p.value: p.fix for p in info.value.problems if p.param == "snapshot"}
    assert set(named) == {"deploy/key.txt", ".env", "config.yaml"}
    assert "private key" in named["deploy/key.txt"] and "dotenv" in named[".env"] and "Hugging Face" in named["config.yaml"]


def test_no_snapshot_of_a_folder_that_is_not_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    junk = tmp_path / "scratch"
    junk.mkdir()
    (junk / "download.whl").write_bytes(b"x")
    monkeypatch.chdir(junk)
    plan = aifsdk.plan(["true"])
    assert plan.snapshot is None and any("no snapshot" in n for n in plan.notes)
    (junk / "pyproject.toml").write_text("[project]\nname='p'\n")
    assert aifsdk.plan(["true"]).snapshot is not None


def test_file_index_remembers_each_file_across_processes(project: Path) -> None:
    """An unchanged file is not read again by a later process: the per-user index answers for it
    (shown by planting a finding in the index on disk); a changed file is read and scanned anew."""
    from aifsdk import _snapshot

    aifsdk.plan(["true"])
    index_file = Path(os.environ["AIFSDK_HOME"]) / "cache" / "snapshot-index.json"
    assert oct(index_file.stat().st_mode & 0o777) == "0o600"
    data = json.loads(index_file.read_text())
    key = str(project / "projmod.py")
    import hashlib

    assert data["files"][key][2] == hashlib.sha256((project / "projmod.py").read_bytes()).hexdigest()
    assert data["files"][key][3] == []  # scanned, clean
    data["files"][key][3] = ["a planted finding", "planted"]
    index_file.write_text(json.dumps(data))
    _snapshot._INDEX = None  # what a new process starts from
    with pytest.raises(aifsdk.RequestError, match="a planted finding"):
        aifsdk.plan(["true"])
    (project / "projmod.py").write_text("def which():\n    return 'v2'  # changed size and mtime\n")
    assert aifsdk.plan(["true"]).snapshot is not None  # stale entry: read and scanned again, clean


def test_same_content_keeps_each_files_mode(project: Path) -> None:
    """Objects carry their mode on the shared inode, so an executable and a plain file with the same
    bytes are stored as two objects and each job copy keeps its own mode."""
    (project / "run.sh").write_text("echo same\n")
    (project / "notes.sh").write_text("echo same\n")
    os.chmod(project / "run.sh", 0o755)
    job = aifsdk.submit(["true"])
    job.result(timeout=60)
    code = job.folder / "code"
    assert os.access(code / "run.sh", os.X_OK) and not os.stat(code / "notes.sh").st_mode & 0o111
    assert os.stat(code / "run.sh").st_ino != os.stat(code / "notes.sh").st_ino


def test_store_objects_are_named_by_the_hash_of_their_bytes(project: Path) -> None:
    import hashlib

    (project / "dup_a.txt").write_text("identical\n")
    (project / "dup_b.txt").write_text("identical\n")
    job = aifsdk.submit(["true"])
    job.result(timeout=60)
    code = job.folder / "code"
    assert os.stat(code / "dup_a.txt").st_ino == os.stat(code / "dup_b.txt").st_ino  # stored once
    objects = [p for p in (Path(os.environ["AIFSDK_JOB_ROOT"]) / ".snapshots" / "objects").rglob("*") if p.is_file()]
    assert len(objects) >= 5
    for obj in objects:
        assert obj.name.removesuffix(".x") == hashlib.sha256(obj.read_bytes()).hexdigest()
        assert not obj.stat().st_mode & 0o222  # read-only: a job cannot change what another job runs


def test_a_file_deleted_between_plan_and_submit_is_left_out(project: Path) -> None:
    """The plan lists the files; one deleted before submit is not in the snapshot, and submit goes on."""
    (project / "scratch.tmp.py").write_text("x = 1\n")
    plan = aifsdk.plan(["true"])
    assert "scratch.tmp.py" in plan.snapshot.files  # type: ignore[union-attr]
    (project / "scratch.tmp.py").unlink()
    job = plan.submit()
    assert job.result(timeout=60).exit_code == 0
    assert not (job.folder / "code" / "scratch.tmp.py").exists() and (job.folder / "code" / "projmod.py").exists()
    assert job.manifest()["snapshot"]["files"] == len(plan.snapshot.files) - 1  # type: ignore[union-attr]
