"""Bad input, second table (reliability and security): inputs a probe of the SDK found refused
unclearly or accepted wrongly, and what reaches the job script. Each row is refused with an aifsdk
error naming the parameter and the fix, before anything is written or submitted, or is accepted on
purpose with a note saying why. The request table of tests/unit/test_bad_input.py covers the
resource fields; this one does not repeat its rows.

Every row runs for real: the Python API, the command's own entry point (aifsdk.cli.run), the
profile parser, the sizing functions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import aifsdk
from aifsdk._profile import parse_profile
from aifsdk.cli import run

FIX_WORDS = ("Fix", "fix", "rename", "put ", "give ", "pass ", "use ", "leave ", "e.g.", "aifsdk sites", "remove", "choose")


def fn(x: Any = 1) -> Any:
    return x


def api(**kwargs: Any) -> Callable[[], Any]:
    return lambda: aifsdk.plan(["true"], **kwargs)


def slurm(**kwargs: Any) -> Callable[[], Any]:
    return lambda: aifsdk.plan(["true"], site="slurm", **kwargs)


def profile(text: str) -> Callable[[], Any]:
    return lambda: parse_profile("executor: slurm\ntitle: t\nsources: [me]\n" + text, name="bad", source="bad.yaml")


def cli(*argv: str) -> Callable[[], Any]:
    """The command line, for real; a non-zero exit becomes an AifsdkError whose text is only the exit
    code: the row's checks then read what the command printed on stderr."""
    def call() -> None:
        try:
            code = run(list(argv))
        except SystemExit as exc:  # argparse's own refusal (usage and the flag's name on stderr)
            code = exc.code
        if code != 0:
            raise aifsdk.AifsdkError(f"exit code {code}")
    return call


def sized(measurements: Any = None, **kwargs: Any) -> Callable[[], Any]:
    m = measurements if measurements is not None else [aifsdk.Measurement(devices=4, items_per_s=100.0)]
    return lambda: aifsdk.size(m, **{"work": 1e6, "site": "lumi-g", **kwargs})


ROWS: list[tuple[str, Callable[[], Any], str]] = []


def row(name: str, call: Callable[[], Any], param: str) -> None:
    ROWS.append((name, call, param))


# -- the job folder --------------------------------------------------------------------------
for i, value in enumerate([123, 1.5, ["a"], {"a": 1}, True, object()]):
    row(f"folder-type-{i}", api(folder=value), "folder")
for ch, label in (("\n", "newline"), ("\r", "cr"), ("%", "percent")):
    row(f"folder-{label}", api(folder=f"/tmp/hs-ok/a{ch}b"), "folder")
# -- extra: values that would end an #SBATCH line, options aifsdk owns ----------------------
for key in ("mail-type", "comment", "begin", "mail-user"):
    for ch, label in (("\r", "cr"), ("\n", "newline"), ("\0", "nul")):
        row(f"extra-{key}-{label}", slurm(extra={key: f"x{ch}touch /tmp/owned"}), f"extra['{key}']")
for key in ("array", "a", "chdir", "D", "wait", "parsable", "signal", "open-mode", "J", "job-name", "o", "e"):
    row(f"extra-reserved-{key}", slurm(extra={key: "1"}), f"extra['{key}']")
for value in ("mail-type=END", ["mail-type", "END"], 3, ("a", "b")):
    row(f"extra-not-a-dict-{type(value).__name__}", slurm(extra=value), "extra")
for value in ([1], {"a": 1}, 1.5, None, b"END"):
    row(f"extra-value-{type(value).__name__}", slurm(extra={"mail-type": value}), "extra['mail-type']")
# -- memory that sbatch would read as the whole node, or not a number ------------------------
for value in (1e-7, 0.0005, 1 / 2048, math.inf, math.nan, -math.inf):
    row(f"mem-{value}", slurm(mem_gb=value), "mem_gb")
# -- the snapshot ------------------------------------------------------------------------------
for i, value in enumerate([123, ["."], {"root": "."}, "/nonexistent/project", aifsdk.SnapshotOptions(root=Path("/nonexistent"))]):
    row(f"snapshot-{i}", api(snapshot=value), "snapshot")
# -- waiting ---------------------------------------------------------------------------------
for value in (math.nan, math.inf, -math.inf, -1, -0.5, "10", True, [1], {"s": 1}):
    row(f"wait-timeout-{value!r}", (lambda v: lambda: aifsdk.wait([], timeout=v))(value), "timeout")
for value in ("nan", "inf", "-1", "-inf", "soon"):
    row(f"cli-wait-timeout-{value}", cli("wait", "1", f"--timeout={value}"), "--timeout")
# -- map -------------------------------------------------------------------------------------
for value in (5, 3.5, None, True, "abc", b"xy"):
    row(f"map-items-{value!r}", (lambda v: lambda: aifsdk.map(fn, v))(value), "items")
for value in (0, -1, 1.5, "2"):
    row(f"map-max-parallel-{value!r}", (lambda v: lambda: aifsdk.map(fn, [1, 2], max_parallel=v))(value), "max_parallel")
# -- finding a job ---------------------------------------------------------------------------
for value in ("nope-123", "999999999", "/nonexistent/job/folder", "1_2_3", "*", "../.."):
    row(f"attach-{value}", (lambda v: lambda: aifsdk.Job.attach(v))(value), "no aifsdk job")
for value in ("nope-123", "999999999", "*"):
    row(f"cli-status-{value}", cli("status", value), "no aifsdk job")
# -- the command line ------------------------------------------------------------------------
for value in ("nope", "LUMI-G", "lumi_g", "", "local "):
    row(f"cli-jobs-site-{value!r}", cli("jobs", f"--site={value}"), "--site")
# -- profiles: what is rendered into the job script -----------------------------------------
for key in ("A B", "A-B", "A.B", "$A", "A=B", "1ABC", "-A", "A;id", "A`id`", "ä", "A\\nB", "A B C", "", " A", "A\\tB"):
    row(f"profile-env-key-{key!r}", profile(f"env: {{{key!r}: '1'}}\n".replace("'", '"')), "env")
for ch in ("\\n", "\\r", "\\0"):
    row(f"profile-env-value-{ch}", profile(f'env: {{A: "x{ch}id"}}\n'), "env.A")
    row(f"profile-setup-{ch}", profile(f'setup: ["module load a{ch}id"]\n'), "setup[0]")
    row(f"profile-srun-args-{ch}", profile(f'srun_args: ["--mpi=pmix{ch}"]\n'), "srun_args[0]")
    row(f"profile-python-{ch}", profile(f'python: "python3{ch}id"\n'), "python")
    row(f"profile-job-root-{ch}", profile(f'job_root: "/scratch{ch}x"\n'), "job_root")
    row(f"profile-scratch-job-root-{ch}", profile(f'scratch_job_root: "/scratch/{{account}}{ch}x"\n'), "scratch_job_root")
    row(f"profile-modules-{ch}", profile(f'software: {{modules: ["module load a{ch}id"]}}\n'), "software.modules[0]")
    # the ssh block: given to ssh, or run by the login node's shell
    row(f"profile-ssh-setup-{ch}", profile(f'ssh: {{host: h, setup: ["module load a{ch}id"]}}\n'), "ssh.setup[0]")
    row(f"profile-ssh-python-{ch}", profile(f'ssh: {{host: h, python: "python3{ch}id"}}\n'), "ssh.python")
    row(f"profile-ssh-job-root-{ch}", profile(f'ssh: {{host: h, job_root: "/scratch{ch}x"}}\n'), "ssh.job_root")
    row(f"profile-ssh-host-{ch}", profile(f'ssh: {{host: "h{ch}id"}}\n'), "ssh.host")
    row(f"profile-ssh-config-{ch}", profile(f'ssh: {{host: h, config: "~/.ssh/c{ch}x"}}\n'), "ssh.config")
    row(f"profile-ssh-options-{ch}", profile(f'ssh: {{host: h, options: ["User=a{ch}ProxyCommand=id"]}}\n'), "ssh.options[0]")
# a host ssh would read as an option
for value in ("-oProxyCommand=id", "-F/tmp/x", " "):
    row(f"profile-ssh-host-option-{value!r}", profile(f'ssh: {{host: "{value}"}}\n'), "ssh.host")
# -- sizing ----------------------------------------------------------------------------------
for value in (math.inf, math.nan, -1, 0, "1e6", True):
    row(f"size-work-{value!r}", sized(work=value), "work")
for value in (0, -1, 1.5, "2", True):
    row(f"size-runs-{value!r}", sized(runs=value), "runs")
for value in (0, 1.5, math.nan, -0.1, "0.9"):
    row(f"size-availability-{value!r}", sized(availability=value), "availability")
for value in (0, 2, math.nan, "0.8"):
    row(f"size-min-efficiency-{value!r}", sized(min_efficiency=value), "min_efficiency")
row("size-p10-above-p90", sized([aifsdk.Measurement(devices=4, items_per_s=100.0, p10=120.0, p90=80.0)]), "measurements")
row("size-median-outside", sized([aifsdk.Measurement(devices=4, items_per_s=200.0, p10=80.0, p90=120.0)]), "measurements")
row("size-inf-throughput", sized([aifsdk.Measurement(devices=4, items_per_s=math.inf)]), "measurements")
row("size-nan-throughput", sized([aifsdk.Measurement(devices=4, items_per_s=math.nan)]), "measurements")
# -- benchmark overrides, checked before any benchmark runs -----------------------------------
def bench(**overrides: Any) -> Callable[[], Any]:
    def call() -> None:
        from omegaconf import OmegaConf

        from aifsdk._profile import shipped_config_dir
        from benchmarks._suite import check_options

        cfg = OmegaConf.load(shipped_config_dir() / "benchmarks.yaml")
        for key, value in overrides.items():
            cfg[key] = value
        check_options(cfg)
    return call


for value in (0, -1, 1.5, "3", True):
    row(f"bench-rounds-{value!r}", bench(rounds=value), "rounds")
for value in (0, -1, 0.001, math.nan, math.inf, "fast", True):
    row(f"bench-telemetry-{value!r}", bench(telemetry_interval_s=value), "telemetry_interval_s")
for value in ("/proc/x", "/dev/null/x", "", "   "):
    row(f"bench-results-dir-{value!r}", bench(results_dir=value), "results_dir")
for value in (0, -2, 1.5):
    row(f"bench-threads-{value!r}", bench(threads=value), "threads")


@pytest.mark.parametrize("name, call, param", ROWS, ids=[r[0] for r in ROWS])
def test_refused_clearly(name: str, call: Callable[[], Any], param: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(os.environ["AIFSDK_JOB_ROOT"])
    with pytest.raises(aifsdk.AifsdkError) as err:
        call()
    message = str(err.value) + capsys.readouterr().err
    assert param in message, message
    assert any(word in message for word in FIX_WORDS), message
    assert not root.exists() or not any(p for p in root.rglob("*") if p.is_file()), "something was written"


def test_the_table_is_big_enough() -> None:
    assert len(ROWS) >= 150, len(ROWS)
    assert len({r[0] for r in ROWS}) == len(ROWS)


# Accepted on purpose, each with why
ACCEPTED = [
    ("extra True flag", slurm(extra={"exclusive": True}), "a flag option (no value) is how sbatch spells it"),
    ("folder as pathlib.Path", api(folder=Path("/tmp/hs-ok/new-folder-x")), "a Path is a path"),
    ("mem_gb of exactly 1 MB", slurm(mem_gb=1 / 1024), "the smallest whole MB sbatch takes"),
    ("wait(timeout=0)", lambda: aifsdk.wait([], timeout=0), "look once and return (a poll)"),
    ("env value with spaces and $", profile('env: {A: "a b $HOME"}\n'), "quoted in the script: the value is kept as written"),
]


@pytest.mark.parametrize("name, call, why", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_on_purpose(name: str, call: Callable[[], Any], why: str) -> None:
    call()


def test_a_user_profile_that_is_not_utf8_is_named_and_the_others_still_list(clean_env: Path) -> None:
    user = clean_env / "config" / "site"
    user.mkdir(parents=True)
    (user / "badenc.yaml").write_bytes(b"executor: local\ntitle: \xff\xfe\nsources: [me]\n")
    with pytest.raises(aifsdk.ProfileError, match="not UTF-8 text.*save the file as UTF-8"):
        aifsdk.load_site("badenc")
    assert run(["sites"]) == 0  # the listing shows it as invalid instead of failing
