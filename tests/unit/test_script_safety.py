"""Nothing raw reaches the job script, and no code is left out of a snapshot silently: environment
names are identifiers, no rendered value holds a newline, carriage return or NUL, a working folder
with a newline is refused; submodules and nested repositories are shipped (their own git lists
them) or named with the fix. Real git, real profiles, real local jobs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import aifsdk
from aifsdk._profile import parse_profile

GIT = ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-c", "protocol.file.allow=always"]


def profile_problems(text: str) -> str:
    with pytest.raises(aifsdk.ProfileError) as err:
        parse_profile("executor: slurm\ntitle: t\nsources: [me]\n" + text, name="bad", source="bad.yaml")
    return str(err.value)


@pytest.mark.parametrize("text, fragment", [
    ("env: {'A; touch x #': '1'}\n", "'A; touch x #' is not a shell variable name"),
    ("env: {'1ABC': '1'}\n", "'1ABC' is not a shell variable name"),
    ("env: {'A B': '1'}\n", "'A B' is not a shell variable name"),
    ("env: {A: \"x\\ntouch /tmp/owned\"}\n", "env.A: 'x\\ntouch /tmp/owned' holds a newline"),
    ("env: {A: \"x\\rY\"}\n", "env.A: 'x\\rY' holds a newline, carriage return or NUL"),
    ("setup: [\"module load a\\nrm -rf x\"]\n", "setup[0]"),
    ("srun_args: [\"--mpi=pmix\\r\"]\n", "srun_args[0]"),
    ("python: \"python3\\nid\"\n", "python:"),
])
def test_profile_text_rendered_into_the_script_is_checked(text: str, fragment: str) -> None:
    assert fragment in profile_problems(text)


def test_a_user_profile_with_a_raw_env_key_is_refused_naming_it(clean_env: Path) -> None:
    user = clean_env / "config" / "site"
    user.mkdir(parents=True)
    (user / "mine.yaml").write_text("executor: local\ntitle: Mine\nsources: [me]\nenv: {'A; touch x #': '1'}\n")
    with pytest.raises(aifsdk.ProfileError, match="not a shell variable name"):
        aifsdk.plan(["true"], site="mine")


@pytest.mark.parametrize("value", ["END\rX", "END\nX", "END\0X"])
def test_extra_values_are_one_line(value: str) -> None:
    with pytest.raises(aifsdk.RequestError) as err:
        aifsdk.plan(["true"], site="slurm", extra={"mail-type": value})
    assert "extra['mail-type']" in str(err.value) and "on one line" in str(err.value)


def test_env_values_are_quoted_in_the_script(clean_env: Path) -> None:
    user = clean_env / "config" / "site"
    user.mkdir(parents=True)
    (user / "mine.yaml").write_text("executor: slurm\ntitle: Mine\nsources: [me]\nenv: {GREETING: \"a b; $(id) `id`\"}\n")
    script = aifsdk.plan(["true"], site="mine").script
    assert "export GREETING='a b; $(id) `id`'" in script


def test_a_working_folder_with_a_newline_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "proj"
    odd = project / "a\nb"
    odd.mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    monkeypatch.chdir(odd)
    with pytest.raises(aifsdk.RequestError) as err:
        aifsdk.plan(["true"], site="slurm", snapshot=str(project))
    assert "working folder" in str(err.value) and "newlines" in str(err.value)
    assert "\n" not in aifsdk.plan(["true"], site="slurm", snapshot=False).script.split("#SBATCH --job-name")[1].split("\n")[0]


def git(*args: str, cwd: Path) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True)


def make_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    git("init", "-q", cwd=root)
    git("add", ".", cwd=root)
    git("commit", "-qm", "init", cwd=root)
    return root


def test_a_submodule_and_a_nested_repository_are_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = make_repo(tmp_path / "lib", {"libmod.py": "WHO = 'submodule'\n"})
    project = make_repo(tmp_path / "proj", {"train.py": "import libmod, nestmod\nprint(libmod.WHO, nestmod.WHO)\n"})
    git("submodule", "add", "-q", str(lib), "vendor/lib", cwd=project)
    git("commit", "-qm", "sub", cwd=project)
    make_repo(project / "nested", {"nestmod.py": "WHO = 'nested'\n"})  # its own repository, not a submodule
    (project / "nested" / "untracked.py").write_text("")  # its untracked files go too, as for the top
    monkeypatch.chdir(project)
    plan = aifsdk.plan(["python", "train.py"])
    files = set(plan.snapshot.files)  # type: ignore[union-attr]
    assert {"vendor/lib/libmod.py", "nested/nestmod.py", "nested/untracked.py", "train.py"} <= files
    assert not any(f.endswith("/.git") or "/.git/" in f for f in files)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(["vendor/lib", "nested"]))
    monkeypatch.setattr(os, "environ", env)
    job = aifsdk.submit(["python", "train.py"])
    assert "submodule nested" in job.result(timeout=60).stdout


def test_a_submodule_not_checked_out_is_named_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = make_repo(tmp_path / "lib", {"libmod.py": "WHO = 1\n"})
    upstream = make_repo(tmp_path / "up", {"train.py": "print(1)\n"})
    git("submodule", "add", "-q", str(lib), "vendor/lib", cwd=upstream)
    git("commit", "-qm", "sub", cwd=upstream)
    clone = tmp_path / "clone"
    subprocess.run([*GIT, "clone", "-q", str(upstream), str(clone)], check=True, capture_output=True)  # no --recursive
    monkeypatch.chdir(clone)
    with pytest.raises(aifsdk.RequestError) as err:
        aifsdk.plan(["python", "train.py"])
    problem = next(p for p in err.value.problems if p.param == "snapshot")
    assert problem.value == "vendor/lib" and "git submodule update --init --recursive" in problem.fix
    (clone / ".aifsdkignore").write_text("vendor/lib/\n")  # left out on purpose
    assert "train.py" in aifsdk.plan(["python", "train.py"]).snapshot.files  # type: ignore[union-attr]
