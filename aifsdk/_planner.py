"""The planner: check a request against its site, resolve every default, render the exact script.

It knows nothing of jobs: :func:`aifsdk.plan` (in :mod:`aifsdk._plan`) builds its plans as
:class:`aifsdk.Plan`, a :class:`CheckedPlan` with ``submit()``, and ``submit`` is
``plan(...).submit()``: one code path, so what a plan shows is what runs.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from . import _snapshot as snapshots
from ._backends import backend_for
from ._errors import PlanWarning, Problem, RequestError, SiteNotFoundError, suggest
from ._profile import SiteProfile, load_site
from ._resolve import Cost, Resolution, Resolved, estimate_cost, resolve
from ._resources import FIELD_ALIASES, Resources, build
from ._snapshot import SnapshotOptions

SUBMIT_OPTIONS = ("site", "name", "folder", "launcher", "snapshot", "container", "after", "strict", "mlflow_run_id")
_MLFLOW_RUN_ID = re.compile(r"[A-Za-z0-9][\w-]{0,255}")
P = TypeVar("P", bound="CheckedPlan")
LAUNCHERS = {"srun": "srun", "srun-per-gpu": "srun", "srun-per-task": "srun", "torchrun": "torchrun", "torchrun-per-node": "torchrun"}


@dataclass(frozen=True)
class Container:
    """An Apptainer/Singularity image the job's Python runs in."""

    image: str
    runtime: str = "apptainer"


@dataclass(frozen=True)
class SnapshotPlan:
    """What submit will snapshot: the files of ``root``, checked for size and secrets."""

    root: Path
    files: list[str]
    options: SnapshotOptions

    def map_path(self, path: str | Path, code: Path) -> str:
        """A path inside the user's tree -> the same path in the job's copy (else unchanged)."""
        resolved = Path(path).resolve()
        if resolved == self.root or self.root in resolved.parents:
            return str(code / resolved.relative_to(self.root))
        return str(path)

    def map_command(self, argv: list[str], cwd: str, code: Path) -> tuple[list[str], str]:
        """Files of the tree named in the command, and the working folder, point into the copy."""
        new_cwd = self.map_path(cwd, code)
        mapped = [argv[0]]
        for arg in argv[1:]:
            candidate = Path(arg) if os.path.isabs(arg) else Path(cwd) / arg
            if not arg.startswith("-") and candidate.is_file() and os.path.isabs(arg):
                mapped.append(self.map_path(candidate, code))
            else:
                mapped.append(arg)  # relative paths resolve in the copy through the working folder
        return mapped, new_cwd


@dataclass(frozen=True)
class CheckedPlan:
    """A checked request, ready to submit. Nothing has been submitted yet.

    Attributes:
        site: the site profile name.
        kind: "function" or "command".
        target: what runs, in words.
        resources: the request with every site default filled in.
        origins: for each resolved field, where its value came from (read-only).
        script: the exact text that will be submitted (the sbatch script on Slurm sites).
        folder: the job folder that submit will create.
        cost: the upper-bound cost at the time limit, in the site's billing unit.
        notes: decisions worth reading before submitting.
        warnings: what the site accepts but bills for nothing (e.g. whole nodes for half their
            GPUs), each with the cheaper way; ``strict=True`` refuses such a request instead.
        pythonpath: folders put first on the job's PYTHONPATH so that the target's module
            imports on the node as it did here.
        launcher: "srun" (srun starts every rank) or "torchrun" (srun starts one torchrun per
            node, which starts ``tasks_per_node`` ranks).
        snapshot: the code snapshot submit will take (root and files), or None when off.
        workdir: the job's working folder: the copy of the submitting folder inside the
            snapshot (None: the submitting folder itself), so that local modules and relative
            paths resolve to the snapshot.
        python: the command that starts Python on the nodes (inside the container, if any).
        container: the Apptainer/Singularity image the job runs in, or None.
        resolved: the request resolved once (resources, time limit in minutes, origins, notes,
            warnings, partition and QoS): the script, the cost and the manifest are read from it.
    """

    site: str
    kind: Literal["function", "command"]
    target: str
    name: str
    resources: Resources
    origins: Mapping[str, str]
    script: str
    folder: Path
    cost: Cost
    notes: tuple[str, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()
    pythonpath: list[str] = field(default_factory=list)
    launcher: str = "srun"
    snapshot: SnapshotPlan | None = None
    workdir: Path | None = None
    python: str = ""
    container: Container | None = None
    profile: SiteProfile = field(repr=False, default=None)  # type: ignore[assignment]
    callable: Callable[..., Any] = field(repr=False, default=None)  # type: ignore[assignment]
    args: tuple[Any, ...] = field(repr=False, default=())
    resolved: Resolved = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def time_minutes(self) -> int:
        """The time limit in whole minutes, as resolved."""
        return self.resolved.minutes

    @property
    def num_tasks(self) -> int:
        """Tasks srun starts (one per node with torchrun, which starts the ranks itself)."""
        per_node = 1 if self.launcher == "torchrun" else (self.resources.tasks_per_node or 1)
        return (self.resources.nodes or 1) * per_node

    @property
    def launch_lines(self) -> list[str]:
        """The exact srun line of the script and, with torchrun, the command each node's task runs."""
        out = [line for line in self.script.splitlines() if line.startswith("srun ")]
        if self.launcher == "torchrun" and self.kind == "command" and self.callable is not None:
            from ._distributed import torchrun_argv

            names = {k: f"${k}" for k in ("SLURM_NODEID", "SLURM_JOB_ID", "MASTER_ADDR", "MASTER_PORT")}
            argv = torchrun_argv(list(self.callable.argv), nnodes=self.callable.nnodes, nproc_per_node=self.callable.nproc_per_node,
                                 python=self.python or "python", env=names)
            out.append("each node's task runs: " + " ".join(argv))
        return out

    def summary(self) -> str:
        r = self.resources
        lines = [
            f"site:      {self.site} ({self.profile.title})" if self.profile else f"site: {self.site}",
            f"job:       {self.kind} {self.target}  (name {self.name})",
            f"folder:    {self.folder}",
        ]
        for key in ("nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task", "mem_gb", "time", "partition", "account", "qos", "constraint"):
            value = getattr(r, key)
            if value is None:
                continue
            origin = self.origins.get(key, "request")
            lines.append(f"{key + ':':<15}{value}  [{origin}]")
        if r.extra:
            lines.append(f"{'extra:':<15}{dict(r.extra)}")
        lines.append(f"cost:      {self.cost}")
        lines += [f"launch:    {line}" for line in self.launch_lines]
        if self.snapshot is not None:
            lines.append(f"snapshot:  {len(self.snapshot.files)} files of {self.snapshot.root} -> {self.folder / 'code'}")
        lines += [f"note:      {n}" for n in self.notes]
        lines += [f"WARNING:   {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"{self.summary()}\n\n--- script ---\n{self.script}"


def plan_again(target: Any, args: tuple[Any, ...], options: dict[str, Any], *, cwd: str,
               pythonpath_in_copy: list[str] | None) -> CheckedPlan:
    """``plan`` for :meth:`Job.resubmit`: relative paths from ``cwd`` (the working folder in the
    job's copy), and for a function the job's PYTHONPATH folders relative to its code copy
    (``pythonpath_in_copy``), so that the new job gets the same folders of its own copy: the
    function was unpickled from wherever this process found its module, which may not be inside
    the copy (e.g. a remote job resubmitted from a laptop)."""
    options = dict(options)
    site = options.pop("site", "local")
    known = {k: options.pop(k) for k in (*SUBMIT_OPTIONS[1:], "resources") if k in options}
    return build_plan(target, args, site=site, fields=options, cwd=cwd, pythonpath_in_copy=pythonpath_in_copy, **known)


def build_plan(target: Any, args: tuple[Any, ...], *, site: str, fields: dict[str, Any], cwd: str, name: str | None = None,
               folder: Any = None, launcher: str | None = None, snapshot: Any = True, container: Any = None, after: Any = None,
               strict: bool = False, resources: Resources | None = None, pythonpath_in_copy: list[str] | None = None,
               mlflow_run_id: str | None = None, make: type[P] = CheckedPlan) -> P:  # type: ignore[assignment]
    """The plan of ``target(*args)`` on ``site`` as a ``make`` (aifsdk.Plan for aifsdk.plan), or the
    RequestError of every problem found. Relative paths of the request are relative to ``cwd``."""
    problems: list[Problem] = []
    if resources is not None:
        if not isinstance(resources, Resources):
            problems.append(Problem("resources", resources, "an aifsdk.Resources", "pass resources=aifsdk.Resources(nodes=..., ...), or the fields as keywords"))
        else:
            for key, value in resources.as_dict().items():
                if key == "extra" and not value:
                    continue
                if value is not None and key in fields and fields[key] != value:
                    problems.append(Problem(key, fields[key], f"one value (resources= has {key}={value!r})", f"pass {key} either in resources= or as a keyword, not both"))
                elif value is not None:
                    fields.setdefault(key, value)
    if after is not None:
        from ._deps import dependency_extra

        known = _site_or_none(site)
        scheduled = None if known is None else backend_for(known).scheduled
        fields["extra"] = dependency_extra(after, site, scheduled, fields.get("extra") or {})
    planner = _Planner(target, args, site, name, folder, fields, launcher, snapshot, container, strict, cwd=cwd,
                       pythonpath_in_copy=pythonpath_in_copy)
    if mlflow_run_id is not None and not (isinstance(mlflow_run_id, str) and _MLFLOW_RUN_ID.fullmatch(mlflow_run_id)):
        problems.append(Problem("mlflow_run_id", mlflow_run_id, "an MLflow run ID (letters, digits, '_', '-'; e.g. 32 hex digits)",
                                "pass the run_id of a run created once, e.g. mlflow.MlflowClient().create_run(experiment_id).info.run_id"))
    planner.problems += problems
    planner.mlflow_run_id = mlflow_run_id
    return planner.build(make)


class _Planner:
    """Collects problems while resolving; raises them all at the end."""

    def __init__(self, target: Any, args: tuple[Any, ...], site: str, name: str | None, folder: Any, resources: dict[str, Any],
                 launcher: str | None = None, snapshot: Any = True, container: Any = None, strict: bool = False, *,
                 cwd: str, pythonpath_in_copy: list[str] | None = None) -> None:
        self.target, self.args, self.site, self.name, self.folder_arg = target, args, site, name, folder
        self.cwd = cwd  # relative paths of the request are relative to it
        self.pythonpath_in_copy = pythonpath_in_copy
        self.launcher_arg = launcher
        self.snapshot_arg = snapshot
        self.container_arg = container
        self.mlflow_run_id: str | None = None
        self.call_args: tuple[Any, ...] = ()
        self.raw = resources
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.warnings: list[PlanWarning] = []
        self.strict = strict
        self.origins: dict[str, str] = {}
        self.resolution: Resolution | None = None

    def fail(self, param: str, value: Any, allowed: str, fix: str) -> None:
        self.problems.append(Problem(param, value, allowed, fix))

    def build(self, make: type[P]) -> P:
        request = self._request()
        profile = None
        try:
            profile = load_site(self.site)
        except SiteNotFoundError as exc:
            self.problems += exc.problems
        kind, call, description = self._target()
        name = self._name(description)
        resolved = request
        if profile:
            res = self.resolution = resolve(request, profile, self.bad_fields)
            self.problems += res.problems
            self.notes += res.notes
            self.warnings += res.warnings
            self.origins.update(res.origins)
            resolved = res.resources or request
        folder = self._folder(profile, name)
        launcher = self._launcher(profile, kind)
        snap = self._snapshot(kind, call, profile) if call is not None and folder is not None else None
        code = folder / "code" if snap is not None and folder is not None else None
        if kind == "command" and call is not None:
            from ._command import CommandTarget

            argv, cwd = list(call.argv), call.cwd
            if snap is not None and code is not None:
                argv, cwd = snap.map_command(argv, cwd, code)
            torchrun = launcher == "torchrun"
            call = CommandTarget(tuple(argv), cwd, launcher, resolved.nodes or 1, (resolved.tasks_per_node or 1) if torchrun else 1)
        self.container = self._container(profile) if profile else None
        if not isinstance(self.strict, bool):
            self.fail("strict", self.strict, "True or False", "pass strict=True to refuse requests that waste budget")
        elif self.strict:
            self.problems += [w.as_problem() for w in self.warnings]
        if profile is not None and not self.problems:  # what is pickled here must unpickle where the job runs
            self.problems += backend_for(profile).check_environment(kind)
        if self.problems:
            raise (RequestError if profile else SiteNotFoundError)(self.problems, site=self.site if profile else None)
        assert profile is not None and call is not None and folder is not None
        pythonpath = module_roots(call) if kind == "function" else []
        workdir = None
        if snap is not None and code is not None:
            inside = self.pythonpath_in_copy
            if inside is not None and kind == "function":  # a resubmit: the same folders of the new copy
                pythonpath = [str(code / rel) for rel in inside]
            else:
                pythonpath = [snap.map_path(p, code) for p in pythonpath]
            mapped = snap.map_path(self.cwd, code)
            workdir = Path(mapped) if mapped != self.cwd else None  # run where the user is, in the copy
            if workdir is not None and any(c in str(workdir) for c in "\n\r"):
                raise RequestError([Problem("working folder", self.cwd, "a folder without newlines or carriage returns "
                                            "(the job starts in its copy, and sbatch --chdir takes one line)",
                                            "submit from a folder with a plainer name (cd to the project's top), or snapshot=False")],
                                   site=self.site)
        once = Resolved.of(self.resolution, origins=self.origins, notes=self.notes, warnings=self.warnings)
        python = self._python(profile, once.resources, folder)
        script = render_script(profile, once.resources, folder, name=name, kind=kind, description=description, pythonpath=pythonpath,
                               launcher=launcher, workdir=workdir, python=python, mlflow_run_id=self.mlflow_run_id, minutes=once.minutes)
        return make(
            site=self.site, kind=kind, target=description, name=name, resources=once.resources, origins=once.origins,
            script=script, folder=folder, cost=estimate_cost(profile, once.resources, once.partition, once.minutes),
            notes=once.notes, warnings=once.warnings, pythonpath=pythonpath, launcher=launcher, snapshot=snap, workdir=workdir, python=python,
            container=self.container, profile=profile, callable=call,
            args=self.call_args, resolved=once,
        )

    # -- the request itself -------------------------------------------------------------------
    def _request(self) -> Resources:
        fields = Resources.field_names()
        known = {k: v for k, v in self.raw.items() if k in fields}
        params = _parameters(self.target)
        for key in sorted(set(self.raw) - set(fields)):
            options = (*fields, *SUBMIT_OPTIONS, "resources")
            close = suggest(key, options, FIELD_ALIASES)
            if close:
                hint = f"did you mean {close[0]}=?"
            elif key in params:
                hint = f"{key} is an argument of the target: pass it positionally, or bind it with functools.partial(fn, {key}=...)"
            else:
                hint = "remove it; see help(aifsdk.submit)"
            self.fail(key, self.raw[key], f"a resource ({', '.join(fields)}) or an option ({', '.join(options[len(fields):])})", hint)
        request, problems = build(known)
        self.problems += problems
        self.bad_fields = {p.param.split("[")[0] for p in self.problems}
        return request

    # -- the target ---------------------------------------------------------------------------
    def _target(self) -> tuple[Literal["function", "command"], Callable[[], Any] | None, str]:
        target, args = self.target, self.args
        if isinstance(target, (list, tuple)):
            from ._command import CommandTarget

            if args:
                self.fail("args", args, "no positional arguments after a command", "put them in the command list itself")
            if not target or not all(isinstance(a, str) for a in target):
                self.fail("target", target, "a non-empty list of strings", "pass e.g. ['python', 'train.py', '--epochs', '3']")
                return "command", None, repr(target)
            if any("\0" in a for a in target):
                self.fail("target", target, "strings without NUL bytes", "remove the NUL characters")
            exe = target[0]
            if os.sep not in exe and shutil.which(exe) is None:
                self.notes.append(f"{exe!r} is not on this machine's PATH; it must be on the nodes' PATH (site setup lines run first)")
            elif os.sep in exe and not os.path.exists(os.path.join(self.cwd, exe)):
                self.fail("target", exe, "an existing program", f"check the path {exe!r} (relative to {self.cwd})")
            for arg in target[1:]:
                if arg.endswith(".py") and not arg.startswith("-") and not os.path.exists(os.path.join(self.cwd, arg)):
                    self.fail("target", arg, "a script that exists", f"{arg!r} is not found relative to {self.cwd}; pass the right path")
            return "command", CommandTarget(tuple(target), self.cwd), shlex.join(target)
        if isinstance(target, str):
            self.fail("target", target, "a callable or a command as a list of strings", f"pass {shlex.split(target)!r} to run it as a command")
            return "command", None, target
        if not callable(target):
            self.fail("target", target, "a picklable callable, or a command as a list of strings", "pass a function defined at module level, or a list such as ['python', 'train.py']")
            return "function", None, repr(target)
        for i, arg in enumerate(args):
            if isinstance(arg, Resources):
                self.fail(f"args[{i}]", arg, "arguments of the target (a Resources is the request, not an argument)",
                          "pass it as resources=aifsdk.Resources(...), after the target's arguments")
        if not any(isinstance(a, Resources) for a in args):
            self._bind(target, args)
        self.call_args = args  # kept apart (not a partial) so a Checkpointable target stays one
        return "function", target, _describe(target)

    def _bind(self, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """The target must accept these arguments: found here, not on the node after the queue wait."""
        import inspect

        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):  # a builtin or C callable without a readable signature
            return
        try:
            signature.bind(*args)
        except TypeError as exc:
            self.fail("args", args, f"arguments that {_describe(target)}{signature} accepts ({exc})",
                      "pass the target's arguments after it: plan(fn, arg1, arg2, site=...); bind keyword arguments with functools.partial")

    def _name(self, description: str) -> str:
        if self.name is not None:
            if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9_.+-]{1,100}", self.name):
                self.fail("name", self.name, "1-100 letters, digits, '_', '-', '.', '+'", "pass a short name such as name='train-unet'")
                return "job"
            return self.name
        base = description.split()[0] if description else "job"
        base = os.path.basename(base).split("(")[0]
        if (isinstance(self.target, (list, tuple)) and len(self.target) > 1 and all(isinstance(a, str) for a in self.target)
                and os.path.basename(self.target[0]).startswith("python")):
            args = list(self.target[1:])
            for i, arg in enumerate(args):  # python's own options come before the script, -m MODULE or -c CODE
                if not arg.startswith("-"):
                    base = os.path.basename(arg)
                    break
                if arg == "-m" and i + 1 < len(args):
                    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", args[i + 1])[:100] or "job"
                if not arg.startswith("--") and "c" in arg[1:]:
                    return "python-c"  # the code itself is no name
        return re.sub(r"[^A-Za-z0-9_.+-]+", "-", base.rsplit(".", 1)[-1] if "." in base and not base.endswith(".py") else base)[:100] or "job"

    def _launcher(self, profile: SiteProfile | None, kind: str) -> str:
        chosen = self.launcher_arg
        origin = "request"
        if chosen is None:
            chosen = getattr(profile, "launcher", None) or "srun"
            origin = f"site {profile.name}" if profile and getattr(profile, "launcher", None) else "default"
        launcher = LAUNCHERS.get(str(chosen))
        if launcher is None:
            self.fail("launcher", chosen, f"one of {', '.join(sorted(LAUNCHERS))}", "use launcher='srun' (srun starts every rank) or 'torchrun'")
            return "srun"
        if launcher == "torchrun" and kind != "command":
            if origin == "request":
                self.fail("launcher", chosen, "torchrun for commands only", "submit ['python', 'train.py', ...] with launcher='torchrun', or use the srun launcher with aifsdk.distributed() in your function")
            return "srun"
        if profile is not None and not backend_for(profile).scheduled and launcher == "torchrun":
            self.fail("launcher", chosen, "torchrun on Slurm sites", f"site {profile.name} starts tasks itself; use the default launcher there")
            return "srun"
        self.origins["launcher"] = origin
        return launcher

    def _snapshot(self, kind: str, call: Any, profile: SiteProfile | None) -> SnapshotPlan | None:
        opt = self.snapshot_arg
        if opt is False or opt is None or profile is None or backend_for(profile).in_process:
            return None
        if isinstance(opt, (str, os.PathLike)):
            opt = SnapshotOptions(root=Path(opt))
        elif opt is True:
            opt = SnapshotOptions()
        if not isinstance(opt, SnapshotOptions):
            self.fail("snapshot", opt, "True, False, a folder, or aifsdk.SnapshotOptions(...)", "pass snapshot=False to run the live code")
            return None
        if opt.root is not None:
            root = (Path(self.cwd) / Path(opt.root).expanduser()).resolve()
            if not root.is_dir():
                self.fail("snapshot", str(root), "an existing folder to snapshot", "pass the project folder, or snapshot=False")
                return None
        else:
            start = Path(self.cwd)
            if kind == "function":
                roots = module_roots(call)
                start = Path(roots[0]) if roots else start
            root = snapshots.find_root(start)
            if not snapshots.looks_like_project(root):
                self.notes.append(f"no snapshot: {root} is neither a git work tree nor a project folder "
                                  f"({', '.join(snapshots.PROJECT_MARKERS)}); pass snapshot='<project dir>' to take one")
                return None
        left_out: list[str] = []
        names = snapshots.list_files(root, tuple(opt.exclude), left_out)
        for folder in left_out:
            self.problems.append(Problem(
                "snapshot", folder, "the files of every submodule and nested repository (their own git lists them)",
                f"{folder} is a git submodule or repository whose files git cannot list (not checked out?): run "
                f"`git submodule update --init --recursive`, or add '{folder}/' to .aifsdkignore to leave it out on purpose"))
        problems = snapshots.check_secrets(root, names, tuple(opt.allow)) + snapshots.check_size(root, names, opt.max_mb)
        self.problems += problems
        return SnapshotPlan(root=root, files=names, options=opt)

    def _container(self, profile: SiteProfile) -> Container | None:
        """The image: ``container=`` of submit, else the site's default (``container:`` in its
        profile); ``container=False`` runs a site with a default image without one."""
        image = self.container_arg if self.container_arg is not None else profile.container
        if not image:
            return None
        backend = backend_for(profile)
        if backend.in_process:
            self.fail("container", image, "no container on site debug (it runs in this process)", "use site='local' or a Slurm site")
            return None
        image = str(image)
        remote = backend.cluster_paths  # the image is a path on the cluster, not here
        if "://" not in image and not remote and not os.path.exists(os.path.join(self.cwd, os.path.expanduser(image))):
            self.fail("container", image, "an existing .sif image (or a docker:// / oras:// reference)",
                      "build or pull it first, e.g. `apptainer pull image.sif docker://...`, and pass its path")
            return None
        declared = profile.software.container_runtime
        runtime = declared if declared in ("apptainer", "singularity") else None
        runtime = runtime or (None if remote else next((r for r in ("apptainer", "singularity") if shutil.which(r)), None))
        if runtime is None:
            runtime = "apptainer"
            self.notes.append("apptainer/singularity is not on this machine's PATH; the job assumes `apptainer` on the nodes")
        path = os.path.abspath(os.path.join(self.cwd, os.path.expanduser(image))) if "://" not in image and not remote else image
        return Container(image=path, runtime=runtime)

    def _python(self, profile: SiteProfile, r: Resources, folder: Path) -> str:
        base = python_command(profile)
        if self.container is None:
            return base
        from ._paths import expand_root

        model = (profile.node.gpu_model or "").upper()
        flags = []
        if r.gpus_per_node:
            flags.append("--rocm" if model.startswith(("MI", "AMD")) or "INSTINCT" in model else "--nv")
        try:
            binds = sorted({str(expand_root(profile.job_root)), str(folder.parent)})
        except ValueError:
            binds = [str(folder.parent)]
        inner = profile.python or "python3"  # the image's own Python (with aifsdk and submitit installed)
        return shlex.join([self.container.runtime, "exec", *flags, "--bind", ",".join(binds), self.container.image]) + f" {inner}"

    def _folder(self, profile: SiteProfile | None, name: str) -> Path | None:
        from ._paths import new_folder_name

        if self.folder_arg is not None and not isinstance(self.folder_arg, (str, os.PathLike)):
            self.fail("folder", self.folder_arg, "a path (str or pathlib.Path) to a new or empty folder", "leave folder unset for a fresh one under the site's job_root")
            return None
        if self.folder_arg is not None:
            folder = Path(self.cwd) / Path(self.folder_arg).expanduser()
            if folder.exists() and any(folder.iterdir()):
                self.fail("folder", str(folder), "a new or empty folder (aifsdk never reuses a job folder)", "leave folder unset for a fresh one, or pick another path")
        elif profile is not None:
            try:
                account = self.raw.get("account")  # a site's scratch template takes the project account
                root = profile.job_root_for(account if isinstance(account, str) else None)
                # expanded here, or by the login node's shell for a cluster reached over SSH
                folder = backend_for(profile).job_root(account if isinstance(account, str) else None) / profile.name / new_folder_name(name)
            except RequestError as exc:
                self.problems += exc.problems
                return None
            except ValueError as exc:
                self.fail("folder", root, "a job_root whose variables are set", f"{exc}; set it or AIFSDK_JOB_ROOT")
                return None
        else:
            return None
        text = str(folder)
        if any(c in text for c in "\n\r%"):
            self.fail("folder", text, "a path without newlines, carriage returns or '%' (Slurm reads % as a pattern)", "choose a plainer folder name")
        return folder

    # -- against the site ---------------------------------------------------------------------
def _parameters(target: Any) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(target).parameters) if callable(target) else set()
    except (TypeError, ValueError):
        return set()


def _site_or_none(site: str) -> SiteProfile | None:
    try:
        return load_site(site)
    except (SiteNotFoundError, ValueError):  # the planner reports it with the other problems
        return None


def _describe(fn: Any) -> str:
    inner = fn.func if isinstance(fn, functools.partial) else fn
    module = getattr(inner, "__module__", None) or ""
    qual = getattr(inner, "__qualname__", None) or type(inner).__name__
    return f"{module}.{qual}" if module and module != "builtins" else qual


@functools.lru_cache(maxsize=1)
def _installed_paths() -> frozenset[Path]:
    import sysconfig

    return frozenset(Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib", "stdlib"))


def module_roots(call: Any) -> list[str]:
    """sys.path entries the target's module was imported from, unless they are installed packages.

    A function defined in ``train.py`` next to the user, or in a test folder pytest put on
    sys.path, must import on the node too; submitit leaves that to luck (its docs/tips.md).
    """
    inner = call.func if isinstance(call, functools.partial) else call
    module_name = getattr(inner, "__module__", None) or getattr(type(inner), "__module__", None)
    module = sys.modules.get(module_name or "")
    file = getattr(module, "__file__", None)
    if not module_name or module_name == "__main__" or not file:
        return []
    root = Path(file).resolve().parent
    for _ in range(module_name.count(".") + (1 if Path(file).name == "__init__.py" else 0)):
        root = root.parent
    if any(root == p or p in root.parents for p in _installed_paths()):
        return []
    return [str(root)]


# -- rendering --------------------------------------------------------------------------------
def signal_delay(profile: SiteProfile, minutes: int) -> int:
    """Seconds before the time limit at which the job is told to checkpoint: the site's delay,
    but at most a quarter of a short job's time (a 1-minute job still runs 45 s first)."""
    return max(5, min(profile.signal_delay_s, minutes * 60 // 4))


def python_command(profile: SiteProfile) -> str:
    return backend_for(profile).python()


def run_command(python: str, folder: Path) -> str:
    """The command each task runs: aifsdk's check of the payload, then submitit's job runner."""
    return f"{python} -u -m aifsdk._run {shlex.quote(str(folder))}"


def _flag(key: str, value: Any) -> str:
    text = str(value)
    if any(c in text or c in key for c in "\r\n\0"):  # checked where each value is given; this is the last line of defence
        raise RequestError([Problem(key, value, "one line without newline, carriage return or NUL", "pass a plain value")])
    return f"#SBATCH --{key}" if value is True else f"#SBATCH --{key}={shlex.quote(text)}"


def environment_lines(profile: SiteProfile, pythonpath: Sequence[str]) -> list[str]:
    """Shell lines that set the job's environment: AIFSDK_SITE (the site's name, so that code in
    the job knows where it runs, e.g. ``aifsdk.measure``), the site's variables, then PYTHONPATH."""
    lines = [f"export AIFSDK_SITE={shlex.quote(profile.name)}"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in profile.env.items()]
    if pythonpath:
        joined = shlex.quote(os.pathsep.join(pythonpath))
        lines.append(f"export PYTHONPATH={joined}${{PYTHONPATH:+:$PYTHONPATH}}")
    return lines


def cpu_bind_args(profile: SiteProfile, r: Resources, launcher: str) -> list[str]:
    """srun's ``--cpu-bind=mask_cpu:...`` from the site's masks: only for one srun task per mask
    on whole nodes (a node-exclusive partition or ``extra={'exclusive': True}``) with the cores
    the masks hold, where the site's binding applies."""
    masks = profile.cpu_bind_masks
    if not masks or launcher != "srun" or r.tasks_per_node != len(masks):
        return []
    part = profile.partitions.get(r.partition or "")
    if not (part is not None and part.exclusive or r.extra.get("exclusive")):
        return []
    if r.cpus_per_task is not None and r.cpus_per_task > min(bin(int(m, 16)).count("1") for m in masks):
        return []
    return [f"--cpu-bind=mask_cpu:{','.join(masks)}"]


def request_options(profile: SiteProfile, r: Resources, name: str, launcher: str = "srun") -> list[tuple[str, Any]]:
    """The allocation's options, as sbatch and salloc both take them (job name to time limit)."""
    flags: list[tuple[str, Any]] = [("job-name", name)]
    for key in ("partition", "account", "qos", "constraint"):
        value = getattr(r, key)
        if value is not None:
            flags.append((key, value))
    torchrun = launcher == "torchrun"
    flags += [("nodes", r.nodes), ("ntasks-per-node", 1 if torchrun else r.tasks_per_node)]
    if r.cpus_per_task is not None:  # with torchrun, one srun task holds the cores of all its ranks
        flags.append(("cpus-per-task", r.cpus_per_task * (r.tasks_per_node or 1) if torchrun else r.cpus_per_task))
    if r.gpus_per_node:
        if profile.gpu_request == "gres":
            flags.append(("gres", f"{profile.gres_name}:{r.gpus_per_node}"))
        else:
            flags.append(("gpus-per-node", r.gpus_per_node))
    if r.mem_gb is not None:
        mem = f"{int(r.mem_gb)}G" if float(r.mem_gb).is_integer() else f"{int(r.mem_gb * 1024)}M"
        flags.append(("mem", mem))
    flags.append(("time", r.time))
    return flags


def tracker_lines(folder: Path, mlflow_run_id: str | None = None) -> list[str]:
    """One experiment-tracker run per submission, kept across requeues (a requeued job runs this
    script again in the same folder): a Weights & Biases run ID made from the job folder's name
    (an array task adds its index), resumed if it exists (WANDB_RESUME=allow); the user's own
    WANDB_RUN_ID / WANDB_RESUME win. MLFLOW_RUN_ID only when asked for: MLflow resumes only a run
    that exists, so the user creates it once and passes its ID."""
    name = re.sub(r"[^A-Za-z0-9_.+-]", "-", folder.name)
    run = name if len(name) <= 64 else f"{name[:57]}-{name[-6:]}"
    lines = [f"export WANDB_RUN_ID=${{WANDB_RUN_ID:-{run}${{SLURM_ARRAY_TASK_ID:+-$SLURM_ARRAY_TASK_ID}}}}",
             "export WANDB_RESUME=${WANDB_RESUME:-allow}"]
    if mlflow_run_id:
        lines.append(f"export MLFLOW_RUN_ID={shlex.quote(mlflow_run_id)}")
    return lines


def render_script(profile: SiteProfile, r: Resources, folder: Path, *, name: str, kind: str, description: str,
                  pythonpath: Sequence[str] = (), launcher: str = "srun", workdir: Path | None = None, python: str = "",
                  mlflow_run_id: str | None = None, minutes: int | None = None) -> str:
    """The job's script. ``minutes``: the resolved time limit (else read from ``r.time``)."""
    from ._version import __version__

    header = [f"# aifsdk {__version__} | site {profile.name} | {kind} {description}".replace("\n", " ")]
    env_lines = environment_lines(profile, pythonpath)
    if not backend_for(profile).scheduled:
        cd = [f"cd {shlex.quote(str(workdir))}"] if workdir else []
        return "\n".join(
            ["#!/bin/bash", *header, f"# run by submitit's {profile.executor} executor, no scheduler: "
             f"{r.tasks_per_node} task(s), stopped after {r.time}", *env_lines, *profile.setup, *cd,
             run_command(python or python_command(profile), folder), ""]
        )
    out_pattern = str(folder / "%j_%t_log.out")
    err_pattern = str(folder / "%j_%t_log.err")
    flags = request_options(profile, r, name, launcher)
    torchrun = launcher == "torchrun"
    flags += [
        ("output", out_pattern.replace("%t", "0")),
        ("error", err_pattern.replace("%t", "0")),
        ("open-mode", "append"),
        *([("chdir", str(workdir))] if workdir else []),
        ("signal", f"USR2@{signal_delay(profile, minutes if minutes is not None else r.time_minutes or 60)}"),
    ]
    flags += [(str(k).lstrip("-").replace("_", "-"), v) for k, v in sorted(r.extra.items()) if v is not False]
    lines = ["#!/bin/bash", *header, *(_flag(k, v) for k, v in flags), ""]
    if r.gpus_per_node and profile.launch_recipe and profile.software.modules:
        lines += ["# site software (the profile's software.modules)", *profile.software.modules, ""]
    if env_lines:
        lines += ["# environment", *env_lines, ""]
    lines += ["# experiment trackers: one run per submission, the same after a requeue", *tracker_lines(folder, mlflow_run_id), ""]
    if profile.setup:
        lines += ["# site setup", *profile.setup, ""]
    if torchrun or (r.nodes or 1) * (r.tasks_per_node or 1) > 1:
        from ._distributed import master_lines

        lines += ["# torch.distributed rendezvous: the first node, a port derived from the job id and free there",
                  *master_lines(python or python_command(profile)), ""]
    # The site's CPU binding (LUMI's masks, one per GCD) and other launch options.
    site_srun = [*cpu_bind_args(profile, r, launcher), *profile.srun_args]
    srun = shlex.join(["srun", "--unbuffered", "--kill-on-bad-exit=1", *site_srun, "--output", out_pattern, "--error", err_pattern])
    lines += ["# run: check the payload's hash, then submitit's runner loads the target, runs it, saves the result",
              "export SUBMITIT_EXECUTOR=slurm", f"{srun} {run_command(python or python_command(profile), folder)}", ""]
    return "\n".join(lines)
