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


@pytest.mark.parametrize("git", [True, False])
def test_aifsdkignore_follows_gitignore_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, git: bool) -> None:
    """'/data/' is the top folder only, 'data/' any folder of that name, '!keep.csv' brings a file
    back, '**' spans folders; with and without git listing the files."""
    root = make_project(tmp_path / "proj", git=git)
    for rel in ("src/data/inner.txt", "a.csv", "keep.csv", "sub/keep.csv", "sub/b.csv", "logs/x/y/run.log", "top.log"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    monkeypatch.chdir(root)
    (root / ".aifsdkignore").write_text("# comment\n/data/\n*.csv\n!keep.csv\nlogs/**/*.log\n")
    files = set(aifsdk.plan(["python", "train.py"]).snapshot.files)  # type: ignore[union-attr]
    assert "data/notes.txt" not in files and "src/data/inner.txt" in files  # anchored at the top
    assert "a.csv" not in files and "sub/b.csv" not in files
    assert {"keep.csv", "sub/keep.csv"} <= files  # negation
    assert "logs/x/y/run.log" not in files and "top.log" in files
    (root / ".aifsdkignore").write_text("data/\n")
    files = set(aifsdk.plan(["python", "train.py"]).snapshot.files)  # type: ignore[union-attr]
    assert "data/notes.txt" not in files and "src/data/inner.txt" not in files  # unanchored: any folder named data


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
    assert "running v2" in res.stdout  # the edit made before this submission is what ran


def _store() -> Path:
    return Path(os.environ["AIFSDK_JOB_ROOT"]) / ".snapshots"


def _packs() -> list[Path]:
    return sorted((_store() / "packs").glob("*.pack"))


def _stored(plan: aifsdk.Plan) -> aifsdk.Plan:
    """The job folder as submit leaves it (snapshot stored, nothing extracted), without starting a job."""
    from aifsdk._launch import _take_snapshot
    from aifsdk._paths import make_private_dir

    make_private_dir(plan.folder)
    _take_snapshot(plan)
    return plan


def test_unchanged_tree_is_stored_once(project: Path) -> None:
    """A second submit of an unchanged tree writes no pack and no manifest: its job folder names the
    same stored snapshot, and each job extracts its own copy when it starts."""
    a = aifsdk.submit(["true"])
    packs, manifests = _packs(), sorted((_store() / "snapshots").iterdir())
    b = aifsdk.submit(["true"])
    a.result(timeout=60), b.result(timeout=60)
    ra = json.loads((a.folder / "aifsdk-job.json").read_text())["snapshot"]
    rb = json.loads((b.folder / "aifsdk-job.json").read_text())["snapshot"]
    assert ra["sha256"] == rb["sha256"] and ra["new_bytes_stored"] > 0 and rb["new_bytes_stored"] == 0
    assert len(packs) == 1 and _packs() == packs and sorted((_store() / "snapshots").iterdir()) == manifests
    assert json.loads((b.folder / "snapshot.json").read_text())["digest"] == ra["sha256"]
    assert (a.folder / "code" / "projmod.py").read_text() == (b.folder / "code" / "projmod.py").read_text()
    assert ra["git_commit"] and len(ra["git_commit"]) == 40


def test_one_changed_file_packs_only_that_file(project: Path) -> None:
    """A second snapshot with one file changed stores a pack holding that file's bytes alone; its
    manifest reads every other file from the first pack."""
    first = aifsdk.submit(["true"])
    (project / "projmod.py").write_text("def which():\n    return 'v2, a changed file'\n")
    second = aifsdk.submit(["true"])
    first.result(timeout=60), second.result(timeout=60)
    old, new = (json.loads((j.folder / "aifsdk-job.json").read_text())["snapshot"] for j in (first, second))
    assert old["sha256"] != new["sha256"] and new["new_bytes_stored"] == (project / "projmod.py").stat().st_size
    packs = _packs()
    assert len(packs) == 2
    newest = next(p for p in packs if p.stat().st_size == new["new_bytes_stored"])
    assert newest.read_bytes() == (project / "projmod.py").read_bytes()
    manifest = json.loads((_store() / "snapshots" / f"{new['sha256']}.json").read_text())
    where = {f[0]: f[3] for f in manifest["files"]}
    assert where["projmod.py"] == newest.name and {where[n] for n in where if n != "projmod.py"} == {(set(p.name for p in packs) - {newest.name}).pop()}
    assert "v2, a changed file" in (second.folder / "code" / "projmod.py").read_text()


def test_materialising_is_idempotent(project: Path) -> None:
    """Extracting a job's snapshot twice (a requeue, a second task) does nothing the second time;
    an interrupted extraction (no completion mark) is redone in full, over what was left."""
    from aifsdk._pack import DONE_FILE, materialise

    (project / "data" / "__init__.py").write_text("")  # an empty file: an object of 0 bytes
    plan = _stored(aifsdk.plan(["true"]))
    code = plan.folder / "code"
    assert not (code / "projmod.py").exists()  # nothing extracted at submit time
    assert materialise(plan.folder) is True
    inode = (code / "projmod.py").stat().st_ino
    assert inode == _tree_file(plan, "projmod.py").stat().st_ino  # a link to the store's tree
    assert materialise(plan.folder) is False and (code / "projmod.py").stat().st_ino == inode
    (plan.folder / DONE_FILE).unlink()  # as if the first job start had died half-way
    (code / "train.py").unlink()
    assert materialise(plan.folder) is True
    assert (code / "train.py").read_text() == (project / "train.py").read_text()
    assert sorted(str(p.relative_to(code)) for p in code.rglob("*") if p.is_file()) == sorted(plan.snapshot.files)  # type: ignore[union-attr]
    assert (code / "data" / "__init__.py").read_bytes() == b""
    copy = plan.folder.parent / (plan.folder.name + "-copy")  # a copy of the folder (a remote job's, pulled back)
    (copy / "code").mkdir(parents=True)
    for name in ("snapshot.json", DONE_FILE):
        (copy / name).write_bytes((plan.folder / name).read_bytes())
    assert materialise(copy) is True and (copy / "code" / "projmod.py").read_text() == (project / "projmod.py").read_text()


def _tree_file(plan: aifsdk.Plan, name: str) -> Path:
    from aifsdk._pack import tree_of

    return tree_of(_store(), json.loads((plan.folder / "snapshot.json").read_text())["digest"]) / name


def _write_without_root_powers(path: Path) -> subprocess.CompletedProcess:
    """Open a file for writing in a child process as a normal user would: as root (this machine's
    tests), without the capabilities that let root write to a read-only file."""
    code = f"open({str(path)!r}, 'r+').write('changed')"
    drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"] if os.geteuid() == 0 else []
    return subprocess.run([*drop, sys.executable, "-c", code], capture_output=True, text=True)


def test_a_second_job_links_from_the_stores_tree(project: Path) -> None:
    """The first job of a snapshot extracts it once into the store's tree; every job's code/ holds
    hard links to that tree's read-only files, in folders of its own: writing to a file in place
    fails, and replacing or deleting one changes only that job's code/."""
    import stat

    from aifsdk._pack import materialise

    (project / "run.sh").write_text("echo hi\n")
    os.chmod(project / "run.sh", 0o755)
    a, b = _stored(aifsdk.plan(["true"])), _stored(aifsdk.plan(["true"]))
    tree_file = _tree_file(a, "projmod.py")
    assert not tree_file.exists()  # no tree until a job of the snapshot starts
    assert materialise(a.folder) is True and materialise(b.folder) is True
    ca, cb = a.folder / "code", b.folder / "code"
    assert (ca / "projmod.py").stat().st_ino == (cb / "projmod.py").stat().st_ino == tree_file.stat().st_ino
    assert (cb / "data" / "notes.txt").stat().st_ino == _tree_file(a, "data/notes.txt").stat().st_ino
    assert stat.S_IMODE(tree_file.stat().st_mode) == 0o400 and stat.S_IMODE(_tree_file(a, "run.sh").stat().st_mode) == 0o500
    assert (ca / "data").stat().st_ino != _tree_file(a, "data").stat().st_ino  # the job's own folder
    (ca / "data" / "out.txt").write_text("a job's own file\n")
    failed = _write_without_root_powers(ca / "projmod.py")
    assert failed.returncode != 0 and "Permission denied" in failed.stderr
    assert tree_file.read_text() == (project / "projmod.py").read_text()
    (ca / "projmod.py").unlink()
    (ca / "projmod.py").write_text("def which():\n    return 'a job replaced its own copy'\n")
    assert tree_file.read_text() == (cb / "projmod.py").read_text() == (project / "projmod.py").read_text()
    assert not (cb / "data" / "out.txt").exists() and not _tree_file(a, "data/out.txt").exists()


def test_a_changed_tree_is_extracted_again(project: Path) -> None:
    """A file of the store's tree changed after it was checked (made writable and written, its mode
    put back): the next job finds it by the tree's record and extracts the tree again from the pack,
    checking every hash; with the pack tampered too, that job fails naming the file."""
    from aifsdk._pack import materialise
    from aifsdk._run import extract_code

    a, b, c = (_stored(aifsdk.plan(["true"])) for _ in range(3))
    materialise(a.folder)
    tree_file = _tree_file(a, "projmod.py")
    tree_file.chmod(0o600)
    tree_file.write_text("def which():\n    return 'changed in the store'\n")
    tree_file.chmod(0o400)
    changed = tree_file.stat().st_ino
    assert extract_code(b.folder) == (None, "")
    assert (b.folder / "code" / "projmod.py").read_text() == (project / "projmod.py").read_text()
    assert _tree_file(a, "projmod.py").stat().st_ino == (b.folder / "code" / "projmod.py").stat().st_ino != changed
    assert [p.name for p in _tree_file(a, "").parent.parent.iterdir()] == [_tree_file(a, "").parent.name]  # the old one is gone
    _tree_file(a, "projmod.py").chmod(0o600)
    with open(_tree_file(a, "projmod.py"), "a") as f:
        f.write("# appended\n")
    manifest = json.loads((_store() / "snapshots" / f"{_tree_file(a, '').parent.name}.json").read_text())
    _, _, _, pack, offset, _ = next(f for f in manifest["files"] if f[0] == "projmod.py")
    path = _store() / "packs" / pack
    path.chmod(0o600)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    problem, kind = extract_code(c.folder)
    assert kind == "SnapshotCorrupt" and problem and "projmod.py" in problem and "does not match the submitted file" in problem
    assert not (c.folder / ".code-complete").exists()
    digest = json.loads((a.folder / "snapshot.json").read_text())["digest"]
    trees = _store() / "trees"
    left = trees / f".{'0' * 16}.1.abcdef.part"  # what a job killed while building a tree leaves
    (left / "files").mkdir(parents=True)
    fresh = trees / f".{'1' * 16}.1.abcdef.part"  # another job's build in progress
    fresh.mkdir()
    os.utime(left, (0, 0))
    data[offset] ^= 0x01  # the pack whole again, and no longer set aside: the next job builds the tree
    path.write_bytes(bytes(data))
    (_store() / "packs" / f"{pack}.corrupt").unlink()
    os.rename(_store() / "snapshots" / f"{digest}.json.corrupt", _store() / "snapshots" / f"{digest}.json")
    assert extract_code(c.folder) == (None, "")
    assert not left.exists() and fresh.exists()  # a day-old leftover is removed, a fresh one is not


def test_a_code_folder_on_another_filesystem_gets_a_checked_copy(project: Path, tmp_path: Path) -> None:
    """Where the job's code/ cannot hold links to the store's tree (here code/ leads to a tmpfs,
    another filesystem than the store), the job extracts its own copy from the pack, checked."""
    import shutil
    import stat
    import tempfile

    from aifsdk._pack import materialise

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem (/dev/shm as tmpfs)")
    materialise(_stored(aifsdk.plan(["true"])).folder)  # the tree exists
    plan = _stored(aifsdk.plan(["true"]))
    elsewhere = Path(tempfile.mkdtemp(dir=shm))
    try:
        (plan.folder / "code").rmdir()
        (plan.folder / "code").symlink_to(elsewhere)
        assert materialise(plan.folder) is True
        copy = elsewhere / "projmod.py"
        assert copy.read_text() == (project / "projmod.py").read_text() and copy.stat().st_nlink == 1
        assert copy.stat().st_ino != _tree_file(plan, "projmod.py").stat().st_ino and stat.S_IMODE(copy.stat().st_mode) == 0o400
    finally:
        shutil.rmtree(elsewhere)


def test_a_missing_pack_fails_the_job_and_is_stored_again(project: Path) -> None:
    """A pack deleted from the store (a clean-up gone wrong): the job says which file and pack, and
    the next submit of the same tree stores the files again instead of pointing at the lost pack."""
    from aifsdk._run import extract_code

    plan = _stored(aifsdk.plan(["true"]))
    (pack,) = _packs()
    pack.unlink()
    problem, kind = extract_code(plan.folder)
    assert kind == "SnapshotCorrupt" and f"its pack {pack.name} is missing" in str(problem)
    again = aifsdk.submit(["python", "train.py"])
    assert "running v1" in again.result(timeout=60).stdout and again.manifest()["snapshot"]["new_bytes_stored"] > 0


def test_a_code_folder_that_cannot_be_written_is_named(project: Path) -> None:
    """Extraction failing for another reason than integrity (here code/ is a file) says where."""
    from aifsdk._run import extract_code

    plan = _stored(aifsdk.plan(["true"]))
    (plan.folder / "code").rmdir()
    (plan.folder / "code").write_text("not a folder\n")
    problem, kind = extract_code(plan.folder)
    assert kind == "SnapshotNotExtracted" and f"into {plan.folder / 'code'}" in str(problem)


def test_a_corrupt_pack_fails_the_job_naming_the_file(project: Path) -> None:
    """One byte changed in the store after submit: the job fails with the integrity error naming the
    file; the pack is marked corrupt, so a later submit of a tree whose snapshot reads from that
    pack stores the files again and runs (nothing in the store is deleted)."""
    projmod = importlib.import_module("projmod")
    plan = _stored(aifsdk.plan(projmod.which))
    (project / "extra.txt").write_text("a second snapshot, reading its other files from the first pack\n")
    _stored(aifsdk.plan(projmod.which))
    from aifsdk._pack import DONE_FILE
    manifest = json.loads((_store() / "snapshots" / f"{json.loads((plan.folder / 'snapshot.json').read_text())['digest']}.json").read_text())
    name, _, _, pack, offset, _ = next(f for f in manifest["files"] if f[0] == "projmod.py")
    path = _store() / "packs" / pack
    path.chmod(0o600)
    data = bytearray(path.read_bytes())
    data[offset + 5] ^= 0x01
    path.write_bytes(bytes(data))
    from aifsdk._run import extract_code

    problem, kind = extract_code(plan.folder)
    assert kind == "SnapshotCorrupt" and problem and "projmod.py" in problem and "corrupt" in problem and "submit again" in problem
    assert not (plan.folder / DONE_FILE).exists() and not (plan.folder / "code" / "projmod.py").exists()
    assert not (_store() / "trees").exists() or not any((_store() / "trees").iterdir())  # no tree, no leftovers
    assert (_store() / "packs" / f"{pack}.corrupt").exists() and path.exists()
    again = aifsdk.submit(projmod.which)  # the second tree, stored before: stored anew, not read from the corrupt pack
    assert again.result(timeout=60) == "v1" and again.manifest()["snapshot"]["new_bytes_stored"] > 0


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


@pytest.mark.parametrize("name", [".ssh/config", "deploy/.aws/credentials", ".docker/config.json", "app/.env.local",
                                  ".kube/config", "tls/server.pem", "server.key", "cert.p12", "cert.pfx",
                                  "home/gcloud/application_default_credentials.json", ".huggingface/token"])
def test_secret_file_names_are_refused(project: Path, name: str) -> None:
    """Every secret path pattern is reached (names are screened by a cheaper literal test first)."""
    path = project / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x\n")
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.plan(["true"])
    assert [p.value for p in info.value.problems if p.param == "snapshot"] == [name]


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
    assert "running v1" in new.result(timeout=60).stdout


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
    """An executable and a plain file with the same bytes are stored once; each job copy keeps its own mode."""
    (project / "run.sh").write_text("echo same\n")
    (project / "notes.sh").write_text("echo same\n")
    os.chmod(project / "run.sh", 0o755)
    job = aifsdk.submit(["true"])
    job.result(timeout=60)
    code = job.folder / "code"
    assert os.access(code / "run.sh", os.X_OK) and not os.stat(code / "notes.sh").st_mode & 0o111
    assert (code / "run.sh").read_text() == (code / "notes.sh").read_text() == "echo same\n"


def test_store_objects_are_named_by_the_hash_of_their_bytes(project: Path) -> None:
    """Every object in the store's index is the sha256 of the bytes it points at; identical files
    are stored once; packs and manifests are read-only and the store is private."""
    import hashlib
    import stat

    (project / "dup_a.txt").write_text("identical\n")
    (project / "dup_b.txt").write_text("identical\n")
    job = aifsdk.submit(["true"])
    job.result(timeout=60)
    lines = (_store() / "objects.idx").read_text().splitlines()
    assert len(lines) >= 5
    digests = [line.split()[0] for line in lines]
    assert len(digests) == len(set(digests)) and hashlib.sha256(b"identical\n").hexdigest() in digests
    for line in lines:
        digest, pack, offset, size = line.split()
        with open(_store() / "packs" / pack, "rb") as f:
            f.seek(int(offset))
            assert hashlib.sha256(f.read(int(size))).hexdigest() == digest
    for path in [*_packs(), *(_store() / "snapshots").iterdir()]:
        assert not path.stat().st_mode & 0o222  # read-only: a job cannot change what another job runs
    assert stat.S_IMODE(_store().stat().st_mode) == 0o700 and stat.S_IMODE((_store() / "packs").stat().st_mode) == 0o700


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
