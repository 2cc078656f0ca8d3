"""Bad input, one table: every row is refused before anything is written, and its message names
the parameter, the value, what is allowed and the fix, in the caller's words (keywords through the
Python API, flags through the command line).

Each row runs for real: aifsdk.plan / aifsdk.submit / aifsdk.Resources in this process, and the
command's own entry point (aifsdk.cli.run) with its real argument parser. Sites with a `discover`
profile ask this machine's Slurm (scontrol) when one answers. "Nothing written" is checked on the
files: the aifsdk home (job root, snapshot store, configuration) and the working folder are the
same before and after; only aifsdk's caches (what scontrol reported, file hashes) may be refreshed.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import aifsdk
from aifsdk.cli import run


def train(cfg: dict, epochs: int = 1) -> dict:
    return cfg


def no_args() -> None:
    return None


LUMI = {"site": "lumi-g", "account": "project_465000001"}
LEONARDO = {"site": "leonardo-booster", "account": "EUHPC_D35_189"}
MN5 = {"site": "mn5-acc", "account": "ehpc123"}
CMD = ["echo", "x"]


@dataclass(frozen=True)
class Api:
    """A call through the Python API that must raise RequestError naming ``param`` and ``value``."""

    id: str
    call: Callable[[], Any]
    param: str
    value: str


def plan(**kw: Any) -> Callable[[], Any]:
    return lambda: aifsdk.plan(CMD, **kw)


def submit(**kw: Any) -> Callable[[], Any]:
    return lambda: aifsdk.submit(CMD, **kw)


def fn(*args: Any, target: Any = train, **kw: Any) -> Callable[[], Any]:
    return lambda: aifsdk.plan(target, *args, **kw)


def res(*args: Any, **kw: Any) -> Callable[[], Any]:
    return lambda: aifsdk.Resources(*args, **kw)


API = [
    # -- Resources fields, each malformed (checked when a Resources is built, and by plan) ----
    Api("nodes-zero", plan(nodes=0), "nodes", "0"),
    Api("nodes-negative", res(nodes=-1), "nodes", "-1"),
    Api("nodes-float", plan(nodes=1.5), "nodes", "1.5"),
    Api("nodes-str", plan(nodes="2"), "nodes", "'2'"),
    Api("nodes-bool", res(nodes=True), "nodes", "True"),
    Api("gpus-negative", plan(gpus_per_node=-1), "gpus_per_node", "-1"),
    Api("gpus-float", res(gpus_per_node=2.0), "gpus_per_node", "2.0"),
    Api("gpus-str", plan(gpus_per_node="4"), "gpus_per_node", "'4'"),
    Api("gpus-bool", res(gpus_per_node=False), "gpus_per_node", "False"),
    Api("tasks-zero", plan(tasks_per_node=0), "tasks_per_node", "0"),
    Api("tasks-negative", res(tasks_per_node=-3), "tasks_per_node", "-3"),
    Api("tasks-str", plan(tasks_per_node="8"), "tasks_per_node", "'8'"),
    Api("tasks-float", res(tasks_per_node=1.0), "tasks_per_node", "1.0"),
    Api("cpus-zero", plan(cpus_per_task=0), "cpus_per_task", "0"),
    Api("cpus-str", res(cpus_per_task="x"), "cpus_per_task", "'x'"),
    Api("cpus-float", plan(cpus_per_task=2.5), "cpus_per_task", "2.5"),
    Api("mem-zero", plan(mem_gb=0), "mem_gb", "0"),
    Api("mem-negative", res(mem_gb=-4), "mem_gb", "-4"),
    Api("mem-words", plan(mem_gb="lots"), "mem_gb", "'lots'"),
    Api("mem-bool", res(mem_gb=True), "mem_gb", "True"),
    Api("time-word", plan(time="forever"), "time", "'forever'"),
    Api("time-negative", res(time=-5), "time", "-5"),
    Api("time-empty", plan(time=""), "time", "''"),
    Api("time-minutes-61", res(time="1:61:00"), "time", "'1:61:00'"),
    Api("time-hours-25", plan(time="1-25:00:00"), "time", "'1-25:00:00'"),
    Api("time-zero", res(time=0), "time", "0"),
    Api("time-float", plan(time=1.5), "time", "1.5"),
    Api("time-seconds-75", res(time="12:00:75"), "time", "'12:00:75'"),
    Api("time-unit-only", plan(time="h"), "time", "'h'"),
    Api("time-list", res(time=[1]), "time", "[1]"),
    Api("partition-shell", plan(partition="gpu;rm -rf"), "partition", "'gpu;rm -rf'"),
    Api("partition-empty", res(partition=""), "partition", "''"),
    Api("partition-space", plan(partition=" gpu"), "partition", "' gpu'"),
    Api("partition-int", res(partition=5), "partition", "5"),
    Api("account-empty", plan(account=""), "account", "''"),
    Api("account-space", res(account="a b"), "account", "'a b'"),
    Api("account-int", plan(account=42), "account", "42"),
    Api("account-dollar", res(account="x$y"), "account", "'x$y'"),
    Api("qos-space", plan(qos="a b"), "qos", "'a b'"),
    Api("qos-empty", res(qos=""), "qos", "''"),
    Api("qos-int", plan(qos=3), "qos", "3"),
    Api("constraint-spaces", plan(constraint="a100 && ib"), "constraint", "'a100 && ib'"),
    Api("constraint-semicolon", res(constraint="x;y"), "constraint", "'x;y'"),
    Api("constraint-int", plan(constraint=7), "constraint", "7"),
    # -- extra: not a dict, reserved options, duplicates of first-class fields, typos, values --
    Api("extra-str", plan(extra="mail-type=END"), "extra", "'mail-type=END'"),
    Api("extra-mem", plan(extra={"mem": "4G"}), "extra['mem']", "'4G'"),
    Api("extra-nodes", res(extra={"nodes": 2}), "extra['nodes']", "2"),
    Api("extra-time", plan(extra={"time": 5}), "extra['time']", "5"),
    Api("extra-job-name", res(extra={"job-name": "x"}), "extra['job-name']", "'x'"),
    Api("extra-output", plan(extra={"output": "f.log"}), "extra['output']", "'f.log'"),
    Api("extra-signal", res(extra={"signal": "USR1"}), "extra['signal']", "'USR1'"),
    Api("extra-typo", plan(extra={"mail_tpye": "END"}), "extra['mail_tpye']", "'END'"),
    Api("extra-list-value", res(extra={"exclusive": ["x"]}), "extra['exclusive']", "['x']"),
    Api("extra-newline", plan(extra={"comment": "a\nb"}), "extra['comment']", "'a\\nb'"),
    Api("extra-gpus", plan(extra={"gpus": 4}), "extra['gpus']", "4"),
    Api("extra-gres-gpu", res(extra={"gres": "gpu:2"}), "extra['gres']", "'gpu:2'"),
    Api("extra-ntasks", plan(extra={"ntasks": 4}), "extra['ntasks']", "4"),
    Api("extra-cpus-per-task", res(extra={"cpus-per-task": 2}), "extra['cpus-per-task']", "2"),
    Api("extra-partition", plan(extra={"partition": "x"}), "extra['partition']", "'x'"),
    Api("extra-account-short", res(extra={"A": "y"}), "extra['A']", "'y'"),
    Api("extra-wait", plan(extra={"wait": True}), "extra['wait']", "True"),
    Api("extra-parsable", res(extra={"parsable": True}), "extra['parsable']", "True"),
    Api("extra-mem-per-cpu-with-mem", plan(mem_gb=4, extra={"mem-per-cpu": "2G"}), "extra['mem-per-cpu']", "'2G'"),
    Api("extra-unknown", res(extra={"frobnicate": 1}), "extra['frobnicate']", "1"),
    # -- keywords that are not fields: suggestions in any case ---------------------------------
    Api("kw-gpus", plan(gpus=4), "gpus", "4"),
    Api("kw-ntasks", plan(ntasks=2), "ntasks", "2"),
    Api("kw-upper", plan(GPUS_PER_NODE=2), "GPUS_PER_NODE", "2"),
    Api("kw-walltime", res(walltime="1h"), "walltime", "'1h'"),
    Api("kw-capital", res(Nodes=2), "Nodes", "2"),
    Api("kw-mem", plan(mem=4), "mem", "4"),
    Api("kw-typo-partition", plan(partiton="gpu"), "partiton", "'gpu'"),
    Api("kw-typo-account", res(acount="p1"), "acount", "'p1'"),
    Api("kw-unknown", plan(foo=1), "foo", "1"),
    Api("kw-target-argument", fn({}, epochs=3), "epochs", "3"),
    Api("resources-positional", res(2), "Resources", "(2,)"),
    # -- submit options ------------------------------------------------------------------------
    Api("name-space", plan(name="has space"), "name", "'has space'"),
    Api("name-empty", submit(name=""), "name", "''"),
    Api("name-int", plan(name=5), "name", "5"),
    Api("name-too-long", plan(name="x" * 101), "name", "'xxxx"),
    Api("launcher-unknown", plan(launcher="mpirun"), "launcher", "'mpirun'"),
    Api("launcher-torchrun-function", fn({}, launcher="torchrun"), "launcher", "'torchrun'"),
    Api("launcher-torchrun-local", plan(launcher="torchrun"), "launcher", "'torchrun'"),
    Api("folder-not-empty", plan(folder="occupied"), "folder", "occupied"),
    Api("folder-percent", submit(folder="job%j"), "folder", "job%j"),
    Api("snapshot-int", fn({}, snapshot=42), "snapshot", "42"),
    Api("snapshot-missing-folder", fn({}, snapshot="/no/such/project"), "snapshot", "/no/such/project"),
    Api("container-missing", plan(container="/no/such/image.sif"), "container", "/no/such/image.sif"),
    Api("container-on-debug", plan(site="debug", container="image.sif"), "container", "image.sif"),
    Api("mlflow-run-id-spaces", plan(mlflow_run_id="a b"), "mlflow_run_id", "'a b'"),
    Api("mlflow-run-id-int", submit(mlflow_run_id=42), "mlflow_run_id", "42"),
    # -- the target and its arguments ----------------------------------------------------------
    Api("target-string", lambda: aifsdk.plan("python train.py"), "target", "'python train.py'"),
    Api("target-empty-list", lambda: aifsdk.plan([]), "target", "[]"),
    Api("target-non-strings", lambda: aifsdk.plan(["python", 3]), "target", "['python', 3]"),
    Api("target-missing-script", lambda: aifsdk.plan(["python", "missing.py"]), "target", "'missing.py'"),
    Api("target-missing-program", lambda: aifsdk.plan(["./nope"]), "target", "'./nope'"),
    Api("target-not-callable", lambda: aifsdk.plan(42), "target", "42"),
    Api("target-nul", lambda: aifsdk.plan(["echo", "a\0b"]), "target", "a\\x00b"),
    Api("command-with-args", lambda: aifsdk.plan(["echo"], 1), "args", "(1,)"),
    Api("args-resources-positional", fn({}, aifsdk.Resources(nodes=1)), "args[1]", "Resources(nodes=1)"),
    Api("args-too-many", fn(1, 2, 3), "args", "(1, 2, 3)"),
    Api("args-missing", fn(), "args", "()"),
    Api("args-for-no-args", fn(1, target=no_args), "args", "(1,)"),
    Api("args-partial-twice", fn(1, target=functools.partial(train, {}, 2)), "args", "(1,)"),
    Api("resources-not-resources", fn({}, resources={"nodes": 2}), "resources", "{'nodes': 2}"),
    Api("resources-disagree", fn({}, nodes=2, resources=aifsdk.Resources(nodes=1)), "nodes", "2"),
    # -- sites ---------------------------------------------------------------------------------
    Api("site-upper", plan(site="LUMI-G"), "site", "'LUMI-G'"),
    Api("site-no-dash", plan(site="lumig"), "site", "'lumig'"),
    Api("site-unknown", submit(site="nosuch"), "site", "'nosuch'"),
    Api("site-int", plan(site=5), "site", "5"),
    Api("site-announced", plan(site="jupiter-ai"), "site", "'jupiter-ai'"),
    # -- against a site's limits -----------------------------------------------------------------
    Api("local-two-nodes", plan(nodes=2), "nodes", "2"),
    Api("local-too-many-gpus", plan(gpus_per_node=99), "gpus_per_node", "99"),
    Api("lumi-gpus-9", plan(**LUMI, gpus_per_node=9), "gpus_per_node", "9"),
    Api("lumi-no-account", plan(site="lumi-g"), "account", "None"),
    Api("lumi-account-format", plan(site="lumi-g", account="x"), "account", "'x'"),
    Api("lumi-qos-undeclared", plan(**LUMI, qos="premium"), "qos", "'premium'"),
    Api("lumi-nodes-beyond", plan(**LUMI, nodes=100000), "nodes", "100000"),
    Api("lumi-mem-beyond", plan(**LUMI, mem_gb=9999), "mem_gb", "9999"),
    Api("lumi-partition-unknown", plan(**LUMI, partition="nosuch"), "partition", "'nosuch'"),
    Api("lumi-cpus-beyond", plan(**LUMI, cpus_per_task=100, tasks_per_node=8), "cpus_per_task", "100"),
    Api("leonardo-qos-unknown", plan(**LEONARDO, qos="premium"), "qos", "'premium'"),
    Api("leonardo-account-format", plan(site="leonardo-booster", account="x"), "account", "'x'"),
    Api("leonardo-debug-qos-nodes", plan(**LEONARDO, qos="boost_qos_dbg", nodes=10), "nodes", "10"),
    Api("leonardo-gpus-8", plan(**LEONARDO, gpus_per_node=8), "gpus_per_node", "8"),
    Api("mn5-debug-qos-nodes", plan(**MN5, qos="acc_debug", nodes=9), "nodes", "9"),
    Api("strict-budget-waste", plan(**LUMI, partition="standard-g", strict=True), "partition", "'standard-g'"),
]


@dataclass(frozen=True)
class Cli:
    """A command line that must exit 2 naming ``flag`` and ``value`` with what is allowed and a fix."""

    id: str
    argv: list[str]
    flag: str
    value: str


def cli(verb: str, *flags: str, command: tuple[str, ...] = ("echo", "x")) -> list[str]:
    return [verb, *flags, "--", *command]


CLI = [
    Cli("nodes-zero", cli("submit", "--nodes", "0"), "--nodes", "0"),
    Cli("nodes-word", cli("submit", "--nodes", "abc"), "--nodes", "abc"),
    Cli("nodes-short-flag", cli("plan", "-N", "-2"), "--nodes", "-2"),
    Cli("gpus-negative", cli("plan", "--gpus-per-node", "-1"), "--gpus-per-node", "-1"),
    Cli("gpus-word", cli("submit", "--gpus-per-node", "x"), "--gpus-per-node", "x"),
    Cli("tasks-zero", cli("plan", "--tasks-per-node", "0"), "--tasks-per-node", "0"),
    Cli("cpus-zero", cli("submit", "--cpus-per-task", "0"), "--cpus-per-task", "0"),
    Cli("mem-zero", cli("plan", "--mem-gb", "0"), "--mem-gb", "0"),
    Cli("mem-word", cli("submit", "--mem-gb", "lots"), "--mem-gb", "lots"),
    Cli("time-word", cli("submit", "--time", "soon"), "--time", "soon"),
    Cli("time-clock", cli("plan", "-t", "1:61:00"), "--time", "1:61:00"),
    Cli("partition-shell", cli("plan", "--partition", "a;b"), "--partition", "a;b"),
    Cli("account-space", cli("submit", "--account", "a b"), "--account", "a b"),
    Cli("qos-space", cli("plan", "--qos", "a b"), "--qos", "a b"),
    Cli("constraint-spaces", cli("plan", "--constraint", "a && b"), "--constraint", "a && b"),
    Cli("extra-gpus", cli("submit", "--extra", "gpus=4"), "--extra gpus", "4"),
    Cli("extra-mem", cli("plan", "--extra", "mem=4G"), "--extra mem", "4G"),
    Cli("extra-typo", cli("submit", "--extra", "tiem=3"), "--extra tiem", "3"),
    Cli("extra-nodes", cli("plan", "--extra", "nodes=2"), "--extra nodes", "2"),
    Cli("extra-gres-gpu", cli("plan", "--extra", "gres=gpu:2"), "--extra gres", "gpu:2"),
    Cli("site-upper", cli("plan", "--site", "LUMI-G"), "--site", "LUMI-G"),
    Cli("site-unknown", cli("submit", "--site", "nosuch"), "--site", "nosuch"),
    Cli("name-space", cli("submit", "--name", "a b"), "--name", "a b"),
    Cli("folder-not-empty", cli("submit", "--folder", "occupied"), "--folder", "occupied"),
    Cli("launcher-unknown", cli("submit", "--launcher", "mpirun"), "--launcher", "mpirun"),
    Cli("mlflow-run-id", cli("submit", "--mlflow-run-id", "a/b"), "--mlflow-run-id", "a/b"),
    Cli("no-command", ["submit"], "command", "[]"),
    Cli("missing-script", cli("submit", command=("python", "missing.py")), "command", "missing.py"),
    Cli("lumi-qos-undeclared", cli("plan", "--site", "lumi-g", "-A", "project_465000001", "--qos", "premium"), "--qos", "premium"),
    Cli("lumi-gpus-9", cli("plan", "--site", "lumi-g", "-A", "project_465000001", "--gpus-per-node", "9"), "--gpus-per-node", "9"),
    Cli("lumi-no-account", cli("submit", "--site", "lumi-g"), "--account", "(not given)"),
    Cli("local-two-nodes", cli("submit", "--nodes", "2"), "--nodes", "2"),
    Cli("unknown-verb", ["bogus"], "verb", "bogus"),
    Cli("sites-show-unknown", ["sites", "show", "lumi"], "--site", "lumi"),
    Cli("size-measure", ["size", "--site", "lumi-g", "--measure", "eight:100", "--work", "1e6"], "--measure", "eight:100"),
]


def _files(*roots: Path) -> set[str]:
    return {str(p) for root in roots if root.exists() for p in root.rglob("*") if "cache" not in p.relative_to(root).parts[:1]}


@pytest.fixture
def workspace(clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A working folder with one occupied job folder; returns a check that nothing was written."""
    work = tmp_path / "work"
    (work / "occupied").mkdir(parents=True)
    (work / "occupied" / "result.pkl").write_text("someone's result\n")
    (work / "image.sif").write_text("not an image; site debug refuses containers anyway\n")
    monkeypatch.chdir(work)
    before = _files(clean_env, work)
    jobs = Path(os.environ["AIFSDK_JOB_ROOT"])
    yield lambda: (_files(clean_env, work) == before and not jobs.exists())


def test_the_table_holds_at_least_100_distinct_bad_inputs() -> None:
    ids = [r.id for r in API] + [f"cli-{r.id}" for r in CLI]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 100, len(ids)


@pytest.mark.parametrize("row", API, ids=[r.id for r in API])
def test_the_api_refuses_before_writing_anything(row: Api, workspace: Callable[[], bool]) -> None:
    with pytest.raises(aifsdk.RequestError) as info:
        row.call()
    assert workspace(), "something was written"
    named = [p for p in info.value.problems if p.param == row.param]
    assert named, f"no problem names {row.param!r}: {info.value}"
    problem = named[0]
    assert row.value in repr(problem.value) or row.value in str(problem.value), (row.value, problem)
    assert problem.allowed.strip() and problem.fix.strip() and problem.fix != problem.allowed
    text = str(info.value)
    assert f"{row.param}=" in text and "allowed" in text and "Fix:" in text and "nothing was submitted" in text


@pytest.mark.parametrize("row", CLI, ids=[r.id for r in CLI])
def test_the_command_line_refuses_before_writing_anything(row: Cli, workspace: Callable[[], bool],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = run(row.argv)
    except SystemExit as exc:  # argparse's own refusals (a number that is not one, an unknown choice)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert workspace(), "something was written"
    assert row.flag.split()[0] in err or row.flag == "verb", err
    assert row.value in err, err
    assert "Fix:" in err, err
    assert "allowed" in err or "not a whole number" in err or "not a number" in err or "invalid choice" in err, err
    spoken = re.sub(r"--extra \S+", "--extra", err)  # `--extra nodes=2` is how the command is given it
    assert not re.search(r"(?<![-\w])(gpus_per_node|tasks_per_node|account|nodes|time|qos)=", spoken), f"the command spoke Python: {err}"
