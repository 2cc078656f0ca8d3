"""The ``aifsdk`` command.

    aifsdk submit [--site S] [--nodes N] [--gpus-per-node G] [--time 2h] ... [--wait] -- CMD ARGS...
    aifsdk plan   [same options] -- CMD ARGS...
    aifsdk status JOB | aifsdk wait JOB | aifsdk logs JOB [--task N] [--stderr] [-f [--all]] | aifsdk cancel JOB
    aifsdk shell [--site S] [request options] [-- CMD]      an interactive allocation (salloc, srun --pty)
    aifsdk jupyter [--site S] [request options] [--json]     Jupyter on a compute node, with its ssh tunnel
    aifsdk show JOB | aifsdk resubmit JOB
    aifsdk sites | aifsdk sites show NAME
    aifsdk doctor [--site slurm] [-N 1 --gpus-per-node 4 ...]
    aifsdk jobs [--site S] [--limit N] [--state RUNNING|PENDING|FAILED|...] [--json]
    aifsdk size --site S --measure DEVICES:ITEMS_PER_S [--measure ...] --work N [--runs R] [--json]

JOB is a job id or a job folder; status, wait, cancel and show also take a map's id (``map-...``,
from ``aifsdk.map``) for the whole map, and ``map-....<index>`` is one of its items. Exit codes: 0 success; 1 the job failed or was cancelled
(``wait``, ``submit --wait``: the command's own exit code when it has one); 2 bad usage or a
bad request (nothing submitted); 3 the scheduler failed; 4 no such job; 5 waiting timed out;
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

from ._backends import backend_for
from ._errors import (
    AifsdkError,
    JobFailedError,
    JobNotFoundError,
    JobTimeoutError,
    RequestError,
    SchedulerError,
)
from ._plan import plan
from ._profile import load_site, site_files
from ._sweep import Job  # Job with the items of packed maps registered, so `aifsdk logs MAP.N` finds them

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SCHEDULER, EXIT_NOT_FOUND, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports it
CANCEL_WAIT_S = 30.0  # after Ctrl-C, how long submit waits for a local job to stop
_EXIT_CODES = ((RequestError, EXIT_USAGE), (SchedulerError, EXIT_SCHEDULER), (JobNotFoundError, EXIT_NOT_FOUND),
               (JobTimeoutError, EXIT_TIMEOUT), (JobFailedError, EXIT_FAILED))


class _Parser(argparse.ArgumentParser):
    """argparse, with a fix on every usage error (argparse names the flag, the value and what is allowed)."""

    def error(self, message: str) -> Any:
        if "Fix:" not in message:
            message += f". Fix: see `{self.prog} --help`"
        super().error(message)


def _number(kind: type, example: str) -> Any:
    """An argparse type whose error says what is allowed and gives an example."""
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}. Fix: e.g. {example}") from None

    parse.__name__ = kind.__name__
    return parse


def _request_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--site", default="local", help="site profile (see `aifsdk sites`; default: local)")
    p.add_argument("--name", help="job name (default: from the command)")
    p.add_argument("--folder", help="job folder (default: a new one under the site's job_root)")
    p.add_argument("--launcher", choices=["srun", "torchrun"], help="srun starts every rank (default), or one torchrun per node")
    p.add_argument("--nodes", "-N", type=_number(int, "--nodes 2"))
    p.add_argument("--gpus-per-node", type=_number(int, "--gpus-per-node 4"))
    p.add_argument("--tasks-per-node", type=_number(int, "--tasks-per-node 4"))
    p.add_argument("--cpus-per-task", type=_number(int, "--cpus-per-task 8"))
    p.add_argument("--mem-gb", type=_number(float, "--mem-gb 64"))
    p.add_argument("--time", "-t", help="wall time: minutes, 90min, 2h, 1-12:00:00, HH:MM:SS")
    p.add_argument("--partition", "-p")
    p.add_argument("--account", "-A")
    p.add_argument("--qos")
    p.add_argument("--constraint", "-C")
    p.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE", help="another sbatch option (repeatable); KEY alone means a flag")
    p.add_argument("--mlflow-run-id", help="export MLFLOW_RUN_ID: every attempt of the job (requeues too) logs to this existing MLflow run")
    p.add_argument("--strict", action="store_true", help="refuse a request the site runs but that wastes budget (its warnings become errors)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    return p


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aifsdk", description="Run jobs on EuroHPC AI Factory supercomputers through Slurm.")
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"aifsdk {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True)
    s = _request_parser(sub, "submit", "submit a command as a job")
    s.add_argument("--wait", action="store_true", help="wait for the end; exit with the command's exit code")
    s.add_argument("--yes", "-y", action="store_true", help="submit without asking, whatever the cost")
    s.add_argument("--follow", "-f", action="store_true", help="follow the job's output (as aifsdk logs -f), then exit as --wait does")
    s.add_argument("--json", action="store_true", help="print the job as JSON")
    p = _request_parser(sub, "plan", "show what submit would do (script, resources, cost); submit nothing")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    for verb, text in (("status", "print a job's state"), ("wait", "wait for a job; exit 0 if it succeeded"), ("cancel", "cancel a job"),
                       ("show", "print a job's manifest (what was submitted, from which code, with which packages)"),
                       ("resubmit", "run a job's snapshot, target, arguments and resources again")):
        q = sub.add_parser(verb, help=text, description=text)
        q.add_argument("job", help="job id or job folder")
        if verb == "wait":
            q.add_argument("--timeout", type=float, help="seconds; exit 5 if the job is still running")
    lg = sub.add_parser("logs", help="print or follow a job's output",
                        description="print one task's stdout (or stderr); with -f, follow every task (or --task N), stdout and "
                                    "stderr merged, each line prefixed by [rank host], until the job ends")
    lg.add_argument("job", help="job id or job folder")
    lg.add_argument("--task", type=_number(int, "--task 0"), help="one task's rank (default: task 0; with -f: every task)")
    lg.add_argument("--stderr", action="store_true", help="print stderr instead of stdout")
    lg.add_argument("-f", "--follow", action="store_true", help="follow the output until the job ends")
    lg.add_argument("--all", action="store_true", help="with -f: show submitit's own INFO lines too")
    st = sub.add_parser("sites", help="list the site profiles; `sites show NAME` prints one", description="list the site profiles; `sites show NAME` prints one")
    st.add_argument("show", nargs="*", metavar="show NAME", help="print one profile in full")
    st.add_argument("--json", action="store_true")
    dr = _request_parser(sub, "doctor", "check a site profile, and a request, against this machine's Slurm cluster (sinfo, scontrol)")
    dr.set_defaults(site="slurm")
    jb = sub.add_parser("jobs", help="list your jobs known to aifsdk", description="list your jobs known to aifsdk (newest first): "
                        "id, name, site, state, elapsed, GPU-hours from accounting when available")
    jb.add_argument("--site", help="only this site's jobs")
    jb.add_argument("--limit", type=int, default=50, help="at most this many jobs (default 50; 0: all)")
    jb.add_argument("--state", type=str.upper, choices=["RUNNING", "PENDING", "FAILED", "COMPLETED", "CANCELLED"],
                    help="only jobs (and maps) with a task or item in this state")
    jb.add_argument("--json", action="store_true")
    sz = sub.add_parser("size", help="how much to ask for on a site, from measured throughput",
                        description="GPU-, node- and billed hours for RUNS runs of WORK samples (or tokens) on a site, from the "
                                    "throughput measured at one or more job sizes; the job size, chained jobs, a P10-P90 range and the "
                                    "access calls the total fits")
    sz.add_argument("--site", required=True, help="target site profile (e.g. lumi-g)")
    sz.add_argument("--measure", action="append", default=[], metavar="DEVICES:ITEMS_PER_S[:P10:P90]",
                    help="the whole job's throughput at one size (repeat for each size measured)")
    sz.add_argument("--from", dest="results", metavar="RESULTS",
                    help="a python -m benchmarks run folder: its scaling study (or workload rows) as the measurements")
    sz.add_argument("--workload", help="with --from: the workload to size when the run measured several")
    sz.add_argument("--device", default="", help="the accelerator it was measured on (torch's device name)")
    sz.add_argument("--measured-on", default="", help="the site it was measured on (no projection to that site)")
    sz.add_argument("--unit", default="samples", choices=["samples", "tokens"])
    sz.add_argument("--work", type=float, required=True, help="samples (or tokens) one run processes, e.g. epochs x dataset size")
    sz.add_argument("--runs", type=int, default=1, help="seeds x configurations")
    sz.add_argument("--overhead", action="append", default=[], metavar="NAME=FRACTION", help="eval, checkpoint, io or startup")
    sz.add_argument("--availability", type=float, default=0.9)
    sz.add_argument("--min-efficiency", type=float, default=0.7)
    sz.add_argument("--partition")
    sz.add_argument("--energy-j-per-item", type=float)
    sz.add_argument("--json", action="store_true")
    sz.add_argument("--report", metavar="DIR", help="also write a proposal-ready report (report.md and a PNG) into DIR (a new folder)")
    sz.add_argument("--name", default="Work package 1", help="the work package's name in the report")
    sh = _request_parser(sub, "shell", "an interactive shell on a compute node: salloc with the request (checked, with its cost, as "
                                       "plan does), then srun --pty; -- CMD runs CMD there instead of a shell")
    sh.set_defaults(site="slurm")
    sh.add_argument("--yes", "-y", action="store_true", help="do not ask, whatever the cost")
    sh.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    jp = _request_parser(sub, "jupyter", "start a Jupyter server on a compute node (a batch job); print the ssh tunnel command, "
                                         "the URL and the token")
    jp.set_defaults(site="slurm")
    jp.add_argument("--yes", "-y", action="store_true", help="do not ask, whatever the cost")
    jp.add_argument("--json", action="store_true", help="print the job, tunnel, URL and token as JSON")
    jp.add_argument("--start-timeout", type=_number(float, "--start-timeout 600"), default=600.0,
                    help="seconds to wait for the server to start (the job stays queued after)")
    pr = sub.add_parser("proposal", help="a proposal-ready request from a file of work packages (markdown and PNG plots)",
                        description="size every work package of a request file and write report.md with the request table, "
                                    "scaling evidence, method and provenance; see the file format in aifsdk/_proposal.py")
    pr.add_argument("file", help="request file (YAML): title, site, packages")
    pr.add_argument("--out", help="a new folder for the report (default: proposal-<UTC time> here)")
    return parser


def _options(args: argparse.Namespace, need_command: bool = True) -> tuple[list[str], dict[str, Any]]:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command and need_command:
        raise RequestError([_problem("command", command, "a command after --", "e.g. aifsdk submit --nodes 2 -- python train.py")])
    extra: dict[str, Any] = {}
    for item in args.extra:
        key, sep, value = item.partition("=")
        extra[key] = value if sep else True
    opts: dict[str, Any] = {"site": args.site}
    if getattr(args, "strict", False):
        opts["strict"] = True
    for key in ("name", "folder", "launcher", "mlflow_run_id", "nodes", "gpus_per_node", "tasks_per_node", "cpus_per_task", "mem_gb", "time", "partition", "account", "qos", "constraint"):
        value = getattr(args, key)
        if value is not None:
            opts[key] = value
    if extra:
        opts["extra"] = extra
    return command, opts


# The API's words for the CLI's flags: a RequestError printed by the command names flags, not keywords.
_FLAGS = ("nodes", "gpus_per_node", "tasks_per_node", "cpus_per_task", "mem_gb", "time", "partition", "account", "qos",
          "constraint", "site", "name", "folder", "launcher", "container", "mlflow_run_id")
_KEYWORD_RE = re.compile(r"\b(%s)(<=|>=|=)(?:'([^']*)'|\"([^\"]*)\"|([^\s,;)?'\"]+))?" % "|".join(_FLAGS))
_EXTRA_RE = re.compile(r"extra=\{'([^']+)': '?([^'}]*)'?\}")


def cli_words(text: str) -> str:
    """``gpus_per_node<=8`` -> ``--gpus-per-node 8 (or less)``; ``account=...`` -> ``--account ...``;
    ``extra={'mail-type': 'END'}`` -> ``--extra mail-type=END``."""
    def flag(m: re.Match[str]) -> str:
        name, op = "--" + m.group(1).replace("_", "-"), m.group(2)
        value = next((g for g in m.groups()[2:] if g is not None), "")
        if not value:
            return name
        return f"{name} {value}" + {"<=": " (or less)", ">=": " (or more)", "=": ""}[op]

    text = _EXTRA_RE.sub(lambda m: f"--extra {m.group(1)}={m.group(2)}", text)
    return _KEYWORD_RE.sub(flag, text)


def cli_problem(p: Any) -> str:
    """One problem as the command's user reads it: the flag, the value, what is allowed, the fix."""
    param = p.param
    if param.startswith("extra["):
        shown = f"--extra {param[7:-2]}" + (f"={p.value}" if p.value is not True else "")
    elif param in _FLAGS:
        shown = f"--{param.replace('_', '-')} {p.value if p.value is not None else '(not given)'}"
    elif param.startswith("--"):
        shown = f"{param} {p.value}"
    elif param in ("target", "command"):
        shown = f"command {p.value!r}"
    else:
        shown = f"{param} {p.value!r}"
    return f"{shown}: allowed {cli_words(p.allowed)}. Fix: {cli_words(p.fix)}"


def _problem(param: str, value: Any, allowed: str, fix: str) -> Any:
    from ._errors import Problem

    return Problem(param, value, allowed, fix)


DEFAULT_CONFIRM_ABOVE = 100.0


def confirm_above() -> float:
    """The cost (in the site's billing unit) above which ``aifsdk submit`` asks in a terminal:
    $AIFSDK_CONFIRM_ABOVE, else ``confirm_above:`` in $AIFSDK_CONFIG_DIR/settings.yaml
    (~/.config/aifsdk/settings.yaml), else 100."""
    from ._profile import user_config_dir

    text = os.environ.get("AIFSDK_CONFIRM_ABOVE")
    where = "AIFSDK_CONFIRM_ABOVE"
    if text is None:
        path = user_config_dir() / "settings.yaml"
        if not path.is_file():
            return DEFAULT_CONFIRM_ABOVE
        import yaml

        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise RequestError([_problem(str(path), "(not YAML)", "a YAML mapping, e.g. `confirm_above: 100`", f"fix the file: {exc}")]) from None
        text, where = (data.get("confirm_above", DEFAULT_CONFIRM_ABOVE) if isinstance(data, dict) else data), f"{path}: confirm_above"
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = -1.0
    if not value >= 0:
        raise RequestError([_problem(where, text, "a number of billed units >= 0", "e.g. confirm_above: 100 (0: always ask)")])
    return value


def _go_ahead(pl: Any, args: argparse.Namespace) -> bool:
    """In a terminal: show the resolved request and its cost; ask when the cost is above the
    threshold, unless --yes. Without a terminal (a script, a pipe): never ask."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()) or args.json:
        return True
    hidden = ("note:", "WARNING:") + (("folder:", "launch:") if args.verb != "submit" else ())  # an allocation has no job folder
    lines = [ln for ln in pl.summary().splitlines() if not ln.startswith(hidden)]
    print("\n".join(cli_words(ln) for ln in lines), file=sys.stderr)
    limit = confirm_above()
    if args.yes or pl.cost.amount <= limit:
        return True
    from ._cost import UNIT_LABEL

    unit = UNIT_LABEL.get(pl.cost.unit, pl.cost.unit)
    print(f"This job may cost {pl.cost.amount:.4g} {unit}, more than {limit:g} {unit} (confirm_above). Submit? [y/N] ",
          end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _plan_json(pl: Any) -> dict[str, Any]:
    return {
        "site": pl.site, "kind": pl.kind, "target": pl.target, "name": pl.name, "folder": str(pl.folder),
        "resources": pl.resources.as_dict(), "origins": dict(pl.origins), "cost": pl.cost.__dict__, "notes": list(pl.notes),
        "warnings": [dataclasses.asdict(w) for w in pl.warnings], "launch": pl.launch_lines, "script": pl.script,
    }


def _wait_exit(job: Job, timeout: float | None = None) -> int:
    try:
        job.result(timeout=timeout)
    except JobFailedError as exc:
        print(str(exc), file=sys.stderr)
        code = exc.exit_code
        if code is not None and code < 0:
            return 128 - code  # killed by a signal: the shell's convention, 128 + the signal's number
        return code if code not in (None, 0) and code < 256 else EXIT_FAILED  # type: ignore[operator]
    print(f"{job.job_id} COMPLETED", file=sys.stderr)
    return EXIT_OK


def _interrupted(job: Job, cancel: bool) -> int:
    """Ctrl-C while submit waits: a job that runs as a child of this command is cancelled (and
    waited for, briefly); a queued one goes on. Either way the command says where the logs are."""
    logs = f"its logs: {' '.join(str(p) for p in job.log_paths())} (`aifsdk logs {job.job_id}`)"
    if not cancel:
        print(f"\naifsdk: stopped waiting; job {job.job_id} goes on (`aifsdk wait {job.job_id}`, `aifsdk cancel {job.job_id}`); {logs}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    job.cancel()
    try:
        job.wait(timeout=CANCEL_WAIT_S)
    except JobTimeoutError:
        pass
    print(f"\naifsdk: interrupted: job {job.job_id} {job.state}; {logs}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _map_verb(args: argparse.Namespace, sweep: Any) -> int:
    """status, wait, cancel and show of a whole map (``aifsdk.map``'s id, ``map-...``)."""
    from ._job import wait

    if args.verb == "show":
        print(json.dumps(sweep.record, indent=2, sort_keys=True, default=str))
        return EXIT_OK
    if args.verb == "cancel":
        held = len(sweep.held_back())
        ids = sweep.cancel()
        print(f"{sweep.id}: cancel requested for array(s) {' '.join(ids) or '(none queued)'}; {held} held-back job(s) will not be submitted",
              file=sys.stderr)
        return EXIT_OK
    sweep.tick(force=True)
    if args.verb == "status":
        c = sweep.counts()
        print(f"{sweep.id} " + " ".join(f"{k}={v}" for k, v in c.items()) + f" held_back={0 if sweep.cancelled else len(sweep.held_back())}")
        return EXIT_OK
    items = sweep.items()
    wait(items, timeout=args.timeout)
    failed = [i for i in items if sweep.item_state(i.index) != "COMPLETED"]
    if failed:
        print(f"{sweep.id}: {len(failed)} of {sweep.n} item(s) did not complete: {', '.join(str(i.index) for i in failed[:20])}"
              f"{' ...' if len(failed) > 20 else ''}; see `aifsdk logs {failed[0].job_id}` and `aifsdk status {failed[0].job_id}`", file=sys.stderr)
        return EXIT_FAILED
    print(f"{sweep.id} COMPLETED ({sweep.n} items)", file=sys.stderr)
    return EXIT_OK


def run(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.verb in ("submit", "plan"):
            command, opts = _options(args)
            pl = plan(command, **opts)
            if args.verb == "submit":  # shown before anything is submitted
                for warning in pl.warnings:
                    print(f"aifsdk: warning: {cli_words(str(warning))} (--strict refuses such requests)", file=sys.stderr)
            if args.verb == "plan":
                text = "\n".join(cli_words(line) if line.startswith(("note:", "WARNING:")) else line for line in pl.summary().splitlines())
                print(json.dumps(_plan_json(pl), indent=2, default=str) if args.json else f"{text}\n\n--- script ---\n{pl.script}")
                return EXIT_OK
            if not _go_ahead(pl, args):
                print("aifsdk: not submitted (nothing was written)", file=sys.stderr)
                return EXIT_FAILED
            child = backend_for(pl.profile).child_of_submitter
            if child and not (args.wait or args.follow):
                print(f"aifsdk: site {pl.site} runs the job as a child of this command, so the command waits until the job ends "
                      "(Ctrl-C cancels it); submit to a Slurm site (--site slurm) to get the prompt back at once", file=sys.stderr)
            with warnings.catch_warnings():  # already printed above, in the command's words
                warnings.simplefilter("ignore", UserWarning)
                job = pl.submit()
            if args.json:
                print(json.dumps({"job_id": job.job_id, "site": job.site, "folder": str(job.folder)}), flush=True)
            else:
                print(job.job_id, flush=True)  # at once, for whoever reads it while the command waits
                print(f"submitted {job.name} to {job.site}; folder {job.folder}; follow with `aifsdk logs -f {job.job_id}`", file=sys.stderr)
            try:
                if args.follow:
                    from ._follow import follow

                    follow(job)
                return _wait_exit(job) if args.wait or args.follow or child else EXIT_OK
            except KeyboardInterrupt:
                return _interrupted(job, cancel=child)
        if args.verb == "shell":
            from ._interactive import shell_argv, shell_plan

            command, opts = _options(args, need_command=False)
            pl = shell_plan(opts.pop("site"), command or None, **opts)
            if not _go_ahead(pl, args):
                print("aifsdk: no allocation asked for", file=sys.stderr)
                return EXIT_FAILED
            argv = shell_argv(pl, command or None)
            print(f"aifsdk: {shlex.join(argv)}", file=sys.stderr)
            return subprocess.call(argv)
        if args.verb == "jupyter":
            from ._interactive import start_jupyter

            command, opts = _options(args, need_command=False)
            if command:
                raise RequestError([_problem("command", command, "no command (aifsdk jupyter runs the Jupyter server)", "drop what follows --")])
            site = opts.pop("site")
            probe = plan(["true"], site=site, snapshot=False, **opts)
            if not _go_ahead(probe, args):
                print("aifsdk: not submitted (nothing was written)", file=sys.stderr)
                return EXIT_FAILED
            job, info = start_jupyter(site, timeout_s=args.start_timeout, **opts)
            if args.json:
                print(json.dumps({"job_id": job.job_id, **info, "tunnel": shlex.join(info["tunnel"])}))
            else:
                print(f"Jupyter runs in job {job.job_id} on {info['host']}:{info['port']}.\n"
                      f"1. open the tunnel (leave it running):\n   {shlex.join(info['tunnel'])}\n"
                      f"2. browse to:\n   {info['url']}\n   (token {info['token']})\n"
                      f"3. stop the server: aifsdk cancel {job.job_id}")
            return EXIT_OK
        if args.verb == "doctor":
            from ._doctor import doctor

            opts = {k: getattr(args, k) for k in ("nodes", "gpus_per_node", "tasks_per_node", "cpus_per_task", "mem_gb", "time",
                                                   "partition", "account", "qos", "constraint") if getattr(args, k) is not None}
            report = doctor(args.site, opts or None)
            print(report.text())
            return EXIT_USAGE if report.problems else EXIT_OK
        if args.verb == "sites" and args.show:
            from ._describe import describe

            if len(args.show) != 2 or args.show[0] != "show":
                raise RequestError([_problem("sites", " ".join(args.show), "`aifsdk sites` or `aifsdk sites show NAME`", "e.g. aifsdk sites show lumi-g")])
            prof = load_site(args.show[1])
            print(json.dumps(dataclasses.asdict(prof), indent=2, default=str) if args.json else describe(prof))
            return EXIT_OK
        if args.verb == "sites":
            rows = []
            for name, path in sorted(site_files().items()):
                try:
                    prof = load_site(name)
                    rows.append({"name": name, "executor": prof.executor, "status": prof.status, "billing": prof.billing.unit, "title": prof.title,
                                 "hardware": prof.hardware(), "file": str(path)})
                except AifsdkError as exc:
                    rows.append({"name": name, "executor": "?", "status": "invalid", "billing": "", "title": str(exc).splitlines()[0], "file": str(path)})
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                width = max(len(r["name"]) for r in rows)
                for r in rows:
                    print(f"{r['name']:<{width}}  {r['executor']:<6} {r['status']:<10} {r['billing']:<11} {r['title']}")
            return EXIT_OK
        if args.verb == "size":
            from ._sizing import size_from_args

            result = size_from_args(args)
            print(json.dumps(dataclasses.asdict(result), indent=2, default=str) if args.json else f"{result.text()}\n\n{result.table()}")
            if args.report:
                from ._proposal import WorkPackage, render

                print(f"report: {render(args.name, [WorkPackage(args.name, result)], args.report)}")
            return EXIT_OK
        if args.verb == "proposal":
            from ._proposal import packages_from_file, render

            title, packages = packages_from_file(args.file)
            for pkg in packages:
                print(f"== {pkg.name}\n{pkg.sizing.text()}\n")
            out = args.out or f"proposal-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
            print(f"report: {render(title, packages, out)}")
            return EXIT_OK
        if args.verb == "jobs":
            from ._jobs import rows, table

            if args.site is not None and args.site not in site_files():
                from ._errors import SiteNotFoundError

                known = sorted(site_files())
                raise SiteNotFoundError([_problem("--site", args.site, f"a site name: {', '.join(known)}",
                                                  "`aifsdk sites` lists them; leave --site out for every site")])
            listing = rows(args.site, args.limit or None, state=args.state)
            print(json.dumps(listing, indent=2) if args.json else table(listing))
            return EXIT_OK
        if args.verb in ("status", "wait", "cancel", "show"):
            from ._sweep import Sweep, attach_map

            found = attach_map(args.job)
            if isinstance(found, Sweep):
                return _map_verb(args, found)
        if args.verb == "wait":
            from ._job import check_timeout

            check_timeout(args.timeout, "--timeout")  # before the job is looked up: the flag is wrong either way
        job = Job.attach(args.job)
        if args.verb == "status":
            state = job.state
            requeues = job.requeues()
            extra = f" ({job.reason})" if state == "PENDING" and job.reason else ""
            extra += f" (requeued {len(requeues)}x: {', '.join(requeues)})" if requeues else ""
            print(f"{job.job_id} {state}{extra}")
            if job.state_note:
                print(f"aifsdk: {job.state_note}", file=sys.stderr)
            return EXIT_OK
        if args.verb == "wait":
            return _wait_exit(job, args.timeout)
        if args.verb == "show":
            print(json.dumps(job.manifest(), indent=2, sort_keys=True, default=str))
            return EXIT_OK
        if args.verb == "resubmit":
            new = job.resubmit()
            print(new.job_id)
            print(f"resubmitted {job.job_id} as {new.job_id}; folder {new.folder}", file=sys.stderr)
            return EXIT_OK
        if args.verb == "cancel":
            job.cancel()
            print(f"{job.job_id} cancel requested", file=sys.stderr)
            return EXIT_OK
        if args.verb == "logs":
            if args.task is not None and not 0 <= args.task < job.num_tasks:
                raise RequestError([_problem("--task", args.task, f"a rank from 0 to {job.num_tasks - 1} (job {job.job_id} has {job.num_tasks} tasks)",
                                             "e.g. --task 0")])
            if args.follow:
                from ._follow import follow

                follow(job, None if args.task is None else [args.task], all_lines=args.all)
                return EXIT_OK
            task = args.task or 0
            job._finished_tasks()  # a remote job's logs are pulled on the way
            path = job.log_paths(task)[1 if args.stderr else 0]
            try:
                with open(path, "rb") as log_file:  # copied in chunks: a log of any size in constant memory
                    sys.stdout.flush()
                    shutil.copyfileobj(log_file, sys.stdout.buffer, 1 << 20)
            except FileNotFoundError:
                print(f"no {'stderr' if args.stderr else 'stdout'} yet for task {task} of job {job.job_id} ({path})", file=sys.stderr)
            return EXIT_OK
    except RequestError as exc:
        head = str(exc).splitlines()[0]
        print("\n".join([f"aifsdk: {head}", *(f"  - {cli_problem(p)}" for p in exc.problems)]), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # while waiting: the jobs go on (wait said how to cancel them)
        return EXIT_INTERRUPTED
    except AifsdkError as exc:
        code = next((c for kind, c in _EXIT_CODES if isinstance(exc, kind)), EXIT_USAGE)
        prefix = "scheduler error: " if code == EXIT_SCHEDULER else ""
        print(f"aifsdk: {prefix}{exc}", file=sys.stderr)
        return code
    return EXIT_USAGE


def main() -> None:
    try:
        code = run()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`aifsdk jobs | head`): stop quietly. Python's documented recipe
        # (library/signal, "Note on SIGPIPE"): point stdout at devnull so that the interpreter's
        # own flush at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_FAILED
    except KeyboardInterrupt:
        print("aifsdk: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code)
