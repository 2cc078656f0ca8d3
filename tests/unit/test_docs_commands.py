"""Every shell command in README.md and docs/*.md either runs in a test or is marked as needing a
real site.

Commands are the lines of ```bash fences (a trailing backslash continues a line; comment-only
lines are skipped). Each must be one of:

- marked as needing a real site in its trailing comment (``# needs a real site``, or ``# on a GPU
  node; needs a real site``): it needs a EuroHPC site, an account or a GPU node;
- run here, against the local site and the local test cluster: ``aifsdk`` commands that read or
  plan (``plan``, ``sites``, ``size``, ``doctor``, ``proposal`` into a fresh folder, ``--help``);
- run by another test, named in :data:`RUN_ELSEWHERE` (a pattern and the test that runs it; the
  test checks that this test still holds the command's distinctive text).
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MARKER = "# needs a real site"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# command pattern -> (test file, text that file must contain: where it runs the command)
RUN_ELSEWHERE: dict[str, tuple[str, str]] = {
    r"^bash tests/run-all\b": (".ci/run", "bash tests/run-all"),
    r"^python3 -m venv \.venv && \.venv/bin/pip install -e \. && python examples/first_job\.py$":
        ("tests/unit/test_examples.py", '"first_job.py"'),
    r"^python examples/first_job\.py$": ("tests/unit/test_examples.py", '"first_job.py"'),
    r"^pip install '\.\[bench\]'$": ("tests/unit/test_wheel.py", "def test_python_m_benchmarks_runs_from_an_empty_folder"),
    r"^python -m benchmarks$": ("tests/unit/test_wheel.py", '"-m", "benchmarks"'),
    r"^python -m benchmarks suite=healthcare\b": ("tests/unit/test_bench_config.py", '"suite=healthcare"'),
    r"^aifsdk (wait|status|cancel|logs) map-3f9a1c2b\b|^aifsdk jobs --state ": ("tests/cluster/test_docs_map_commands.py", 'EXAMPLE_ID = "map-3f9a1c2b"'),
    r"^python -m benchmarks suite=allreduce site=slurm\b": ("tests/cluster/test_bench_allreduce.py", '"suite=allreduce", "site=slurm"'),
    r"^python -m benchmarks suite=scaling site=slurm\b": ("tests/cluster/test_scaling_study.py", '"suite=scaling"'),
    r"^python -m benchmarks --multirun\b": ("tests/unit/test_bench_cli.py", '"--multirun"'),
    r"^python -m benchmarks\.report\b": ("tests/unit/test_bench_results.py", "report.main("),
    r"^aifsdk submit --site slurm\b.*examples/ddp_train\.py": ("tests/cluster/test_distributed.py", '"ddp_train.py"'),
    r"^aifsdk submit --site local\b": ("tests/unit/test_docs_commands.py", "def test_a_first_local_command_job"),
    r"^aifsdk (status|logs|wait|show) JOB$": ("tests/unit/test_docs_commands.py", "def test_a_first_local_command_job"),
    r"^aifsdk submit -- python train\.py$": ("tests/unit/test_local_interrupt.py", "def test_ctrl_c_on_a_local_submit_cancels_the_job"),
    r"^aifsdk size --from\b": ("tests/cluster/test_scaling_study.py", '"size", "--from"'),
    r"^python -m benchmarks threads=": ("tests/unit/test_bench_cli.py", '"threads=1"'),
    r"^python -m tools\.(bench_submit|bench_snapshot|bench_lifecycle|check_matmul|check_repeat)\b":
        ("tests/unit/test_bench_scripts.py", '"-m", f"tools.{script}"'),
    r"^(time )?python -m benchmarks\.gpu_check --device cpu --sizes tiny\b": ("tests/unit/test_gpu_check.py", '"--sizes", "tiny"'),
    r"^taskset -c 0 python -m tools\.check_repeat\b": ("tests/unit/test_bench_scripts.py", '"check_repeat"'),
    r"^python -m pytest tools/test_overhead\.py": ("tests/unit/test_bench_scripts.py", "tools"),
    r"^bash tests/cluster/(slurm-cluster|ssh-remote) up$": ("tests/run-all", "tests/cluster/slurm-cluster up"),
    r"^bash tests/cluster/slurm-cluster twins? ": ("tests/run-all", "bash tests/cluster/slurm-cluster twins up"),
    r"^(export )?SLURM_CONF=.*sbatch --test-only": ("tests/cluster/test_twins.py", "--test-only"),
    r"^aifsdk submit --strict\b": ("tests/unit/test_cli.py", '"submit", "--strict"'),
    r"^AIFSDK_REFRESH_EXPECTED=1 python -m pytest tests/unit/test_plan\.py$": ("tests/unit/test_plan.py", "AIFSDK_REFRESH_EXPECTED"),
    r"^python -m tools\.secret_guard_fp ": ("tests/unit/test_bench_scripts.py", '"-m", "tools.secret_guard_fp"'),
    r"^aifsdk logs -f \d+$": ("tests/cluster/test_daily.py", '"logs", "-f", job.job_id'),
    r"^aifsdk shell --site slurm\b": ("tests/cluster/test_daily.py", '["shell", "--site", "slurm"'),
    r"^aifsdk jupyter --site slurm\b": ("tests/cluster/test_daily.py", '"jupyter", "--site", "slurm"'),
    r"^export WANDB_(RUN_ID|RESUME)=": ("tests/unit/expected/site-lumi-g.sbatch", "export WANDB_RUN_ID="),
    r"^python -m pytest\b": ("tests/run-all", "pytest"),
}
RUN_HERE = re.compile(r"^aifsdk (plan|sites|size(?!.* --from )|doctor|proposal|--help|--version)\b")


@dataclass(frozen=True)
class Command:
    file: str
    line: int
    text: str

    @property
    def marked(self) -> bool:
        """Its trailing comment says it needs a real site (``# needs a real site``, or ``# ...; needs a real site``)."""
        comment = self.text.partition(" #")[2]
        return MARKER.removeprefix("# ") in comment

    @property
    def bare(self) -> str:
        """The command without its trailing comment, ``.venv/bin/python`` read as ``python``."""
        text = self.text.split("  #", 1)[0].split(" # ", 1)[0].strip()
        return re.sub(r"(^|\s)\.venv/bin/python\b", r"\1python", text)


COMMAND_WORDS = ("aifsdk ", "python ", "python3 ", "bash ", "pip ", "torchrun ", "taskset ", "srun ", "sbatch ", "apptainer ", "singularity ",
                 "module ", "export ", "time ", ".venv/bin/python ", ".venv/bin/pip ", "~/venvs/")


RUNNABLE_IN_TABLES = ("aifsdk ", "python ", ".venv/bin/python ", "bash ", "export ", "time ")


def _syntax(span: str) -> bool:
    """A command's syntax in a table (``aifsdk submit [request] -- CMD``), not a command to run."""
    return "[" in span or re.search(r"\b[A-Z]{3,}\b", span) is not None


def _is_command(text: str) -> bool:
    return text.startswith(COMMAND_WORDS) or re.match(r"[A-Z_][A-Z0-9_]*=", text) is not None  # VAR=value command


def commands() -> list[Command]:
    """Shell command lines of fenced bash/sh/console blocks and of indented code blocks."""
    out = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        fence, pending, start, previous = None, "", 0, ""
        for n, line in enumerate(lines, 1):
            if line.startswith("```"):
                fence = None if fence is not None else (line[3:].strip() or "text")
                previous = line
                continue
            if fence is None and line.startswith("|"):  # a table cell holding a whole command
                out += [Command(str(path.relative_to(REPO)), n, span) for span in re.findall(r"`([^`]+)`", line)
                        if span.startswith(RUNNABLE_IN_TABLES) and len(span.split()) >= 3 and not _syntax(span)]
                previous = line
                continue
            shell = fence in ("bash", "sh", "shell", "console")
            indented = fence is None and line.startswith("    ") and (not previous.strip() or previous.startswith("    "))
            previous = line
            if not (shell or indented or pending):
                continue
            text = line.strip().removeprefix("$ ")
            if not pending and (not text or text.startswith("#") or not _is_command(text)):
                continue
            if not pending:
                start = n
            if text.endswith("\\"):
                pending += text[:-1] + " "
                continue
            out.append(Command(str(path.relative_to(REPO)), start, pending + text))
            pending = ""
    return out


ALL = commands()


def test_the_docs_have_commands_and_markers() -> None:
    assert len(ALL) > 20
    assert any(c.marked for c in ALL)
    assert any(RUN_HERE.match(c.bare) for c in ALL)


@pytest.mark.parametrize("command", [c for c in ALL if not c.marked and not RUN_HERE.match(c.bare)], ids=lambda c: f"{c.file}:{c.line}")
def test_each_command_is_run_by_a_test_or_marked(command: Command) -> None:
    matches = [(pattern, where) for pattern, where in RUN_ELSEWHERE.items() if re.search(pattern, command.bare)]
    assert matches, (f"{command.file}:{command.line}: `{command.bare}` is run by no test and not marked; add a test that runs it "
                     f"(RUN_ELSEWHERE in this file) or end the line with `{MARKER}` if it needs a EuroHPC site")
    test_file, text = matches[0][1]
    assert text in (REPO / test_file).read_text(), f"{test_file} no longer holds {text!r}: which test runs `{command.bare}`?"


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    assert argv[0] == "aifsdk"
    return [sys.executable, "-m", "aifsdk", *[sys.executable if a == "python" else a for a in argv[1:]]]


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, AIFSDK_HOME=str(tmp_path / "home"), AIFSDK_CONFIG_DIR=str(tmp_path / "home" / "config"),
                AIFSDK_JOB_ROOT=str(tmp_path / "jobs"))


@pytest.mark.parametrize("command", [c for c in ALL if not c.marked and RUN_HERE.match(c.bare)], ids=lambda c: f"{c.file}:{c.line}")
def test_each_reading_or_planning_command_runs_here(command: Command, sandbox: dict[str, str], tmp_path: Path) -> None:
    text = command.bare.replace("--out request/", f"--out {tmp_path / 'request'}").replace("--report request/", f"--report {tmp_path / 'report'}")
    if " doctor" in text or "--site slurm" in text:
        from conftest import _cluster_up

        if _cluster_up() is not None and not os.environ.get("CI"):
            pytest.skip("needs the local test cluster (tests/cluster/slurm-cluster up)")
    run = subprocess.run(_argv(text), cwd=REPO, env=sandbox, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{command.file}:{command.line}: `{command.bare}` exited {run.returncode}:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"


def test_a_first_local_command_job(sandbox: dict[str, str]) -> None:
    """The README's first command job on site local, then its follow-up commands with the job's id."""
    (submit,) = [c for c in ALL if c.bare.startswith("aifsdk submit --site local")]
    run = subprocess.run(_argv(submit.bare), cwd=REPO, env=sandbox, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    job_id = run.stdout.split()[-1]
    follow = [c for c in ALL if c.file == submit.file and re.fullmatch(r"aifsdk \w+ JOB", c.bare)]
    assert {c.bare.split()[1] for c in follow} >= {"status", "logs", "wait"}
    for command in follow:
        done = subprocess.run(_argv(command.bare.replace("JOB", job_id)), cwd=REPO, env=sandbox, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command.file}:{command.line}: `{command.bare}` exited {done.returncode}: {done.stderr}"
        if command.bare.startswith("aifsdk logs"):
            assert platform.node() in done.stdout


def test_the_readme_python_quickstart_runs(sandbox: dict[str, str], tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    assert blocks
    for code in blocks:
        script = tmp_path / "quickstart.py"
        script.write_text(code)
        run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=sandbox, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{code}\n{run.stderr}"
