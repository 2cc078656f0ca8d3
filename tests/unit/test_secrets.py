"""The secret guard on real files: each kind it must catch, whole files (not only their first MB),
what it must let through, and what is shipped being what was checked (a file swapped for a
symlink, or given a secret, between plan and submit is not shipped)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import aifsdk
from aifsdk._snapshot import SecretScan

# secret-looking contents are assembled at run time, so that this file itself holds none
KEY = "a1B2" * 10  # 40 characters of a made-up token
KINDS = [
    ("pkcs8.pem.txt", "-----BEGIN ENCRYPTED " + "PRIVATE KEY-----\nMIIFHz\n", "private key"),
    ("_netrc", "machine example.org login me password x\n", ".netrc"),
    ("kaggle.json", '{"username": "me", "key": "0123"}\n', "Kaggle"),
    (".kaggle/kaggle.json", "{}\n", "Kaggle"),
    (".envrc", "export WANDB_API" + "_KEY=" + KEY + "\n", "secret assignment"),
    ("settings.toml", "wandb_api" + "_key = " + KEY + "\n", "secret assignment"),
    ("aws.ini", "[default]\naws_secret" + "_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY0\n", "secret assignment"),
    ("state.json", '{"resources": [{"pass' + 'word": "Tr0ub4dor&3x"}]}\n', "secret assignment"),
    ("azure.json", '{"clientSec' + 'ret": "Q~8xY.abcdefghijklmnopqrstuvw"}\n', "secret assignment"),
    ("llm.py", "KEY = 'sk-" + "proj-" + KEY + "_" + KEY + "'\n", "API key"),
    ("terraform.tfstate", "{}\n", "Terraform"),
]


def write(root: Path, name: str, content: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    write(root, "train.py", "print('hi')\n")
    write(root, "pyproject.toml", "[project]\nname = 'p'\n")
    monkeypatch.chdir(root)
    return root


def snapshot_problems(err: aifsdk.RequestError) -> dict[str, str]:
    return {str(p.value): p.fix for p in err.problems if p.param == "snapshot"}


@pytest.mark.parametrize("name, content, why", KINDS, ids=[k[0] for k in KINDS])
def test_each_kind_is_refused(project: Path, name: str, content: str, why: str) -> None:
    write(project, name, content)
    with pytest.raises(aifsdk.RequestError) as err:
        aifsdk.plan(["python", "train.py"])
    assert why in snapshot_problems(err.value)[name]


def test_a_key_after_the_first_megabyte_is_found(project: Path) -> None:
    filler = ("x = 1  # padding\n" * 200_000).encode()  # 3.4 MB of code
    write(project, "big.py", filler + b"-----BEGIN RSA " + b"PRIVATE KEY-----\n" + filler)
    with pytest.raises(aifsdk.RequestError) as err:
        aifsdk.plan(["python", "train.py"])
    assert "private key" in snapshot_problems(err.value)["big.py"]


def test_a_secret_across_two_read_windows_is_found() -> None:
    scan = SecretScan()
    text = b" " * ((1 << 20) - 10) + b"AKIA" + b"ABCDEFGHIJKLMNOP" + b"\n"  # the key starts 10 bytes before the edge
    scan.feed(text[: 1 << 20])
    assert scan.found == []
    scan.feed(text[1 << 20:])
    assert scan.found and "AWS" in scan.found[0]


@pytest.mark.parametrize("content", [
    "password = os.environ['PASS" + "WORD']\n",
    "api_key = config.api_key\n",
    "secret = '${SECRET}'\n",
    "parser.add_argument('--pass" + "word', default=None)\n",
    "# set WANDB_API" + "_KEY in your environment\n",
    "self.secret_name = secret_name\n",
    "token_file: str = 'path/to/token'\n",
    "-----BEGIN PUBLIC KEY-----\nMIIB\n",
    "sk-learn is not a key\n",
])
def test_references_and_prose_are_let_through(project: Path, content: str) -> None:
    write(project, "code.py", content)
    assert "code.py" in aifsdk.plan(["python", "train.py"]).snapshot.files  # type: ignore[union-attr]


def test_a_file_swapped_for_a_symlink_after_the_plan_is_not_shipped(project: Path, tmp_path: Path) -> None:
    outside = write(tmp_path, "shadow", "root:$6$notreally:19000:0:99999:7:::\n")
    data = write(project, "data.txt", "harmless\n")
    plan = aifsdk.plan(["python", "train.py"])
    assert "data.txt" in plan.snapshot.files  # type: ignore[union-attr]
    data.unlink()
    data.symlink_to(outside)
    with pytest.raises(aifsdk.RequestError) as err:
        plan.submit()
    assert "data.txt" in snapshot_problems(err.value) and str(outside) in snapshot_problems(err.value)["data.txt"]
    store = Path(os.environ["AIFSDK_JOB_ROOT"]) / ".snapshots"
    packed = b"".join(p.read_bytes() for p in (store / "packs").glob("*")) if (store / "packs").is_dir() else b""
    assert b"notreally" not in packed


def test_the_real_etc_shadow_is_never_read(project: Path) -> None:
    if not Path("/etc/shadow").exists():
        pytest.skip("no /etc/shadow here")
    data = write(project, "data.txt", "harmless\n")
    plan = aifsdk.plan(["python", "train.py"])
    data.unlink()
    data.symlink_to("/etc/shadow")
    with pytest.raises(aifsdk.RequestError, match="/etc/shadow"):
        plan.submit()
    store = Path(os.environ["AIFSDK_JOB_ROOT"]) / ".snapshots"
    assert not list((store / "packs").glob("*.pack")) if (store / "packs").is_dir() else True


def test_a_secret_written_after_the_plan_is_not_shipped(project: Path) -> None:
    conf = write(project, "conf.py", "LR = 0.1\n")
    plan = aifsdk.plan(["python", "train.py"])
    conf.write_text("LR = 0.1\nHF = 'hf_" + "z" * 34 + "'\n")
    with pytest.raises(aifsdk.RequestError) as err:
        plan.submit()
    assert "Hugging Face" in snapshot_problems(err.value)["conf.py"] and "at submit" in snapshot_problems(err.value)["conf.py"]
    # allowed on purpose: shipped
    allowed = aifsdk.plan(["python", "train.py"], snapshot=aifsdk.SnapshotOptions(allow=("conf.py",)))
    assert allowed.submit().result(timeout=60).exit_code == 0


def test_a_symlink_inside_the_project_is_shipped_as_its_file(project: Path) -> None:
    write(project, "real.py", "print('real')\n")
    (project / "alias.py").symlink_to(project / "real.py")
    job = aifsdk.submit(["python", "alias.py"])
    assert "real" in job.result(timeout=60).stdout


def test_a_git_repository_is_scanned_as_shipped(project: Path) -> None:
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    write(project, "notes.md", "aws_secret" + "_access_key: " + "Zm9vYmFy" * 5 + "\n")
    with pytest.raises(aifsdk.RequestError) as err:
        aifsdk.plan(["python", "train.py"])
    assert "notes.md" in snapshot_problems(err.value)


def test_the_pack_reads_only_the_file_that_was_checked(tmp_path: Path) -> None:
    """Between the check and the read (a race with the plan's user): a link or another file in its
    place is not read, and no partial pack is left."""
    from aifsdk._pack import PackChanged, PackStore

    root = tmp_path / "tree"
    checked = write(root, "a.txt", "checked\n")
    st = os.lstat(checked)
    secret = write(tmp_path, "secret", "not for the pack\n")
    checked.rename(root / "kept.txt")  # the checked inode stays in use
    checked.symlink_to(secret)
    store = PackStore(tmp_path / "store")
    with pytest.raises(PackChanged):
        store.add(root, [("a.txt", "0" * 64, False)], sources={"a.txt": (str(checked), st)})
    checked.unlink()
    write(root, "a.txt", "another file\n")  # a new inode under the checked name
    with pytest.raises(PackChanged):
        store.add(root, [("a.txt", "0" * 64, False)], sources={"a.txt": (str(checked), st)})
    assert list((tmp_path / "store" / "packs").iterdir()) == []
