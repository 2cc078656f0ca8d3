"""Site profiles: the schema, where profiles live, and loading them with every problem reported.

A site profile is a YAML file in the Hydra config group ``site`` (``configs/site/<name>.yaml``).
The shipped ones come inside the installed package (``aifsdk/configs``); a user's own files in
``$AIFSDK_CONFIG_DIR/site/`` (default ``~/.config/aifsdk/site/``) add sites or replace shipped
ones of the same name. The schema is the dataclasses below; unknown keys and wrong types are
errors that name the file, the key and what is allowed.

Sections of a profile: ``node`` (hardware as Slurm sees it), ``partitions`` and ``qos`` (limits),
``account`` (format, required), ``gpu_request`` (--gpus-per-node or --gres), ``gpu_policy``
(cores and memory per GPU), ``billing`` (unit and conversion), ``launcher``/``launch_note``,
``env``/``setup`` (rendered into the script), ``cpu_bind_masks`` (the site's CPU binding),
``software`` (module lines, loaded by GPU jobs on sites with a launch recipe; image hints),
``job_root``/``scratch_job_root``/``storage``, ``status``/``notice`` (announced systems refuse to
submit) and ``sources`` (per fact: source, confidence, date).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ._errors import Problem, ProfileError, SiteNotFoundError, suggest
from ._resources import parse_time

Confidence = Literal["official", "secondary", "press", "unverified"]
Launcher = Literal["srun-per-gpu", "torchrun-per-node", "srun", "torchrun", "srun-per-task"]
# How a partition or QoS may be chosen when the request names none: ``general`` classes are
# picked automatically (the default first, else the smallest that fits), ``debug`` ones only when
# the request asks for the debug class (partition="debug" or qos="debug"), ``special`` ones
# (preemptible, free, commercial, interactive, department QoS...) only when named.
Role = Literal["general", "debug", "special"]
_PLACEHOLDERS = ("account", "user")


@dataclass(frozen=True, kw_only=True)
class Partition:
    """Limits of one partition. ``None`` means unknown or unlimited (nothing is checked)."""

    description: str = ""
    default: bool = False
    role: Role = "general"
    min_nodes: int | None = None
    max_nodes: int | None = None
    node_count: int | None = None  # nodes in the partition: no job can have more
    max_time: int | str | None = None
    default_time: int | str | None = None
    exclusive: bool = False  # node-exclusive: whole nodes are allocated and billed
    free: bool = False  # no allocation is consumed here (e.g. a free debug partition)
    gpus_per_node: int | None = None
    gpu_model: str | None = None  # when it differs from node.gpu_model
    gpu_mem_gb: float | None = None
    cpus_per_node: int | None = None
    mem_gb: float | None = None
    qos: list[str] = field(default_factory=list)  # QoS allowed here (empty: any the site lists for it)

    @functools.cached_property
    def max_minutes(self) -> int | None:
        return None if self.max_time is None else parse_time(self.max_time)

    @functools.cached_property
    def default_minutes(self) -> int | None:
        return None if self.default_time is None else parse_time(self.default_time)


@dataclass(frozen=True, kw_only=True)
class Qos:
    """A quality of service and its per-job limits (Leonardo and BSC select size classes by QoS)."""

    description: str = ""
    default: bool = False  # used for checks (and written, if the site requires a QoS) when none is named
    role: Role = "general"
    partitions: list[str] = field(default_factory=list)  # where it applies (empty: every partition)
    account_pattern: str | None = None  # accounts it belongs to (regex, whole match)
    min_nodes: int | None = None
    max_nodes: int | None = None
    max_gpus: int | None = None  # per job, all nodes together
    max_time: int | str | None = None

    @functools.cached_property
    def max_minutes(self) -> int | None:
        return None if self.max_time is None else parse_time(self.max_time)


@dataclass(frozen=True, kw_only=True)
class Node:
    """One compute node as the scheduler sees it (GPUs as Slurm counts them: GCDs on MI250X)."""

    count: int | None = None  # GPU nodes in the system
    gpus: int | None = None
    gpu_model: str | None = None
    gpu_mem_gb: float | None = None
    cpus: int | None = None
    cpus_usable: int | None = None  # cores a job may use when the site reserves some
    cpu_model: str | None = None
    mem_gb: float | None = None  # what a job may request per node
    mem_total_gb: float | None = None  # installed
    arch: str | None = None
    interconnect: str | None = None


@dataclass(frozen=True, kw_only=True)
class Account:
    required: bool = False
    pattern: str | None = None
    example: str | None = None


@dataclass(frozen=True, kw_only=True)
class GpuPolicy:
    """How CPU cores and memory go with GPUs on this site."""

    cpus_per_gpu_max: int | None = None  # more cores per GPU is refused
    cpus_per_gpu_min: int | None = None  # fewer cores per GPU is refused (the site refuses such jobs at submission)
    cpus_per_gpu_fixed: int | None = None  # the site gives exactly this many per GPU (more is refused)
    cpus_per_gpu_default: int | None = None  # the site's cores-per-GPU rule: cpus_per_task when the job does not say
    mem_gb_per_gpu_max: float | None = None
    mem_gb_per_gpu_default: float | None = None  # memory the site asks a job to request per GPU (mem_gb when unset)
    mem_request: bool = True  # False: memory follows the GPUs and --mem is refused
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Billing:
    """How the site charges: ``unit`` is what an allocation is counted in.

    ``per_node_hour`` is what one whole node costs for one hour in ``unit`` (LUMI-G: 4 GPU-hours,
    Leonardo: 32 core-hours); ``None`` counts the unit directly (GPUs x h, nodes x h, cores x h).
    On shared (not node-exclusive) partitions a job pays a share of the node: its GPUs
    (``gpus``), the largest of its GPU, core and memory shares (``max-share``), or the whole
    node (``node``). ``gpus_per_billed_gpu``: Slurm GPUs in one billed GPU (LUMI: 2 GCDs = 1 MI250X).
    ``slice_cpus`` / ``slice_mem_gb``: with ``max-share``, cores and memory are counted in whole
    slices of this size (LUMI small-g: 8 cores or 64 GB, one GCD's share), rounded up.
    """

    unit: Literal["gpu-hours", "node-hours", "core-hours"] = "gpu-hours"
    per_node_hour: float | None = None
    shared_by: Literal["gpus", "max-share", "node"] = "gpus"
    gpus_per_billed_gpu: int = 1
    slice_cpus: int | None = None
    slice_mem_gb: float | None = None
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Software:
    """The site's software: ``modules`` are shell lines that GPU jobs on sites with a launch
    recipe (``launcher``) run before the job starts (empty the list in your copy of the profile to
    skip them); ``images`` are hints for ``container=``."""

    modules: list[str] = field(default_factory=list)
    container_runtime: Literal["apptainer", "singularity", "enroot"] | None = None
    images: list[str] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Ssh:
    """How a laptop reaches the site: aifsdk runs your own ssh (config, agent, ProxyJump,
    certificates; 2FA prompts happen in ssh) and stores no password."""

    host: str  # a Host of ~/.ssh/config, or user@host
    python: str | None = None  # the cluster-side Python with aifsdk, submitit, cloudpickle (default: the profile's python, else python3)
    setup: list[str] = field(default_factory=list)  # shell lines run before it on the login node (module load ...)
    job_root: str | None = None  # cluster-side job folders; default: the profile's scratch_job_root or job_root, expanded there
    config: str | None = None  # an ssh_config file to use instead of ~/.ssh/config (ssh -F)
    options: list[str] = field(default_factory=list)  # extra `ssh -o` options, e.g. ["ProxyJump=gateway.example"]


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where one fact (or one section of the profile) comes from, and how sure we are of it."""

    fact: str
    source: str
    confidence: Confidence
    date: str  # when the source was dated or read: YYYY, YYYY-MM or YYYY-MM-DD
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class SiteProfile:
    """Everything aifsdk knows about one site. See configs/site/*.yaml for examples."""

    name: str
    executor: Literal["local", "debug", "slurm"]
    title: str = ""
    status: Literal["available", "announced"] = "available"
    notice: str = ""  # for announced sites: what is known and when
    alternatives: list[str] = field(default_factory=list)  # sites to use meanwhile
    discover: bool = False
    default_time: int | str | None = None
    gpu_request: Literal["gpus-per-node", "gres"] = "gpus-per-node"
    gres_name: str = "gpu"
    job_root: str = "~/.aifsdk/jobs"
    scratch_job_root: str | None = None  # job folders on the site's scratch: {account}, {user}
    python: str | None = None
    signal_delay_s: int = 90
    cluster_name: str | None = None  # Slurm's ClusterName on the site: another name means another cluster
    max_array_size: int | None = None  # Slurm's MaxArraySize (`aifsdk doctor` compares it with the cluster's)
    max_submit_jobs: int | None = None  # jobs one user may queue, where sacctmgr cannot tell (aifsdk.map holds the rest back)
    launcher: Launcher | None = None  # recommended launch pattern (None: aifsdk's default, srun)
    launch_note: str = ""
    node: Node = field(default_factory=Node)
    partitions: dict[str, Partition] = field(default_factory=dict)
    qos: dict[str, Qos] = field(default_factory=dict)
    qos_required: bool = False
    account: Account = field(default_factory=Account)
    gpu_policy: GpuPolicy = field(default_factory=GpuPolicy)
    billing: Billing = field(default_factory=Billing)
    env: dict[str, str] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)
    srun_args: list[str] = field(default_factory=list)  # extra srun options for every job step
    # The site's CPU masks, one per node-local rank (LUMI-G: 7 cores next to each GCD); srun binds
    # with them when a job runs exactly this many ranks per node on whole nodes.
    cpu_bind_masks: list[str] = field(default_factory=list)
    software: Software = field(default_factory=Software)
    storage: dict[str, str] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)  # site tools: accounts, qos, budget, ...
    notes: list[str] = field(default_factory=list)
    sources: list[str | Source] = field(default_factory=list)
    ssh: Ssh | None = None  # set in a user's copy of a profile to submit from a laptop
    container: str | None = None  # an Apptainer/Singularity image every job runs in (submit(container=...) overrides)
    source_file: str = ""

    @functools.cached_property
    def default_minutes(self) -> int | None:
        """``default_time`` in whole minutes (checked when the profile is loaded)."""
        return None if self.default_time is None else parse_time(self.default_time)

    @property
    def launch_recipe(self) -> bool:
        """The site recommends one rank per GPU (``launcher``): GPU jobs get one task per GPU,
        the site's cores and memory per GPU, its CPU binding and its module lines by default
        (where a scheduler starts the tasks: the resolver and the sbatch renderer ask)."""
        return self.launcher in ("srun-per-gpu", "torchrun-per-node")

    @property
    def default_partition(self) -> str | None:
        for name, part in self.partitions.items():
            if part.default:
                return name
        return None

    def job_root_for(self, account: str | None) -> str:
        """The job root template for a request: the site's scratch when it needs (and has) the
        account, else ``job_root``. ``$VARS`` and ``~`` are left for ``_paths.expand_root``."""
        if self.scratch_job_root and (account or "{account}" not in self.scratch_job_root):
            return self.scratch_job_root.format(account=account or "", user=_user())
        return self.job_root

    def hardware(self) -> str:
        """One line: '2978 nodes x 8 AMD MI250X (64 GB), 64 cores (63 usable), 480 GB, x86_64'."""
        n = self.node
        parts = []
        if n.gpus:
            mem = f" ({n.gpu_mem_gb:g} GB)" if n.gpu_mem_gb else ""
            parts.append(f"{n.gpus} x {n.gpu_model or 'GPU'}{mem}")
        if n.cpus:
            parts.append(f"{n.cpus} cores" + (f" ({n.cpus_usable} usable)" if n.cpus_usable else ""))
        if n.mem_gb or n.mem_total_gb:
            parts.append(f"{(n.mem_gb or n.mem_total_gb):g} GB")
        if n.arch:
            parts.append(n.arch)
        text = ", ".join(parts)
        return f"{n.count} nodes x {text}" if n.count and text else text


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "user")


def shipped_config_dir() -> Path:
    """``configs/`` inside the installed wheel, else the repository's top-level ``configs/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / "site").is_dir():
            return candidate
    raise ProfileError(here, ["no configs/site directory found in the package or next to it; reinstall aifsdk"])


def user_config_dir() -> Path:
    if os.environ.get("AIFSDK_CONFIG_DIR"):
        return Path(os.environ["AIFSDK_CONFIG_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "aifsdk"


_LISTING: dict[tuple[tuple[str, int], ...], dict[str, Path]] = {}


def site_files() -> dict[str, Path]:
    """Site name -> profile file; user files replace shipped ones of the same name. The listing is
    cached until a site folder changes (its mtime), so plan() does not glob on every call."""
    folders = [root / "site" for root in (shipped_config_dir(), user_config_dir())]
    key = tuple((str(f), f.stat().st_mtime_ns if f.is_dir() else -1) for f in folders)
    if key not in _LISTING:
        found: dict[str, Path] = {}
        for folder in folders:
            if folder.is_dir():
                for path in sorted(folder.glob("*.yaml")):
                    found[path.stem] = path
        _LISTING.clear()
        _LISTING[key] = found
    return dict(_LISTING[key])


_CACHE: dict[Path, tuple[int, SiteProfile]] = {}


def load_site(name: str) -> SiteProfile:
    """Load and check the profile of site ``name``."""
    files = site_files()
    if not isinstance(name, str) or name not in files:
        close = suggest(name, sorted(files))
        fix = (f"did you mean {', '.join(close)}?" if close else "run `aifsdk sites` to list them; or add your own in "
               f"{user_config_dir() / 'site' / (str(name) + '.yaml')}")
        raise SiteNotFoundError([Problem("site", name, f"one of {', '.join(sorted(files))}", fix)])
    path = files[name]
    mtime = path.stat().st_mtime_ns
    cached = _CACHE.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(path, [f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); save the file as UTF-8"]) from None
    profile = parse_profile(text, name=name, source=path)
    _CACHE[path] = (mtime, profile)
    return profile


def parse_profile(text: str, *, name: str, source: str | Path) -> SiteProfile:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ProfileError(source, ["the top level must be a mapping of keys to values"])
    data = dict(data)
    declared = data.pop("name", name)
    problems: list[str] = []
    if declared != name:
        problems.append(f"name: {declared!r} differs from the file name {name!r}; rename one of them")
    data.pop("source_file", None)
    built = _build(SiteProfile, {**data, "name": name, "source_file": str(source)}, "", problems)
    if not problems:
        problems += _semantic_problems(built)
    if problems:
        raise ProfileError(source, problems)
    return built


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONTROL = re.compile(r"[\r\n\0]")


def _script_text_problems(profile: SiteProfile) -> list[str]:
    """What the profile puts into the job script must not carry raw text: environment names are
    shell identifiers, and no value or line holds a newline, carriage return or NUL (each would end
    an ``#SBATCH`` or ``export`` line early and start a command of its own)."""
    out = []
    for key, value in profile.env.items():
        if not isinstance(key, str) or not _IDENTIFIER.match(key):
            out.append(f"env: {key!r} is not a shell variable name (letters, digits and '_', not starting with a digit); rename it")
        if isinstance(value, str) and _CONTROL.search(value):
            out.append(f"env.{key}: {value!r} holds a newline, carriage return or NUL; put the value on one line")
    lines = [("setup", profile.setup), ("srun_args", profile.srun_args), ("software.modules", profile.software.modules)]
    if profile.ssh:  # the block's own setup lines
        lines.append(("ssh.setup", profile.ssh.setup))
    for where, entries in lines:
        for i, line in enumerate(entries):
            if isinstance(line, str) and _CONTROL.search(line):
                out.append(f"{where}[{i}]: {line!r} holds a newline, carriage return or NUL; give one shell line per entry")
    values = [("python", profile.python), ("job_root", profile.job_root), ("scratch_job_root", profile.scratch_job_root)]
    if profile.ssh:  # given to ssh or run by the login node's shell: one line each
        values += [("ssh.host", profile.ssh.host), ("ssh.python", profile.ssh.python), ("ssh.job_root", profile.ssh.job_root),
                   ("ssh.config", profile.ssh.config), *((f"ssh.options[{i}]", o) for i, o in enumerate(profile.ssh.options))]
    for where, value in values:
        if isinstance(value, str) and _CONTROL.search(value):
            out.append(f"{where}: {value!r} holds a newline, carriage return or NUL; put it on one line")
    if profile.ssh and isinstance(profile.ssh.host, str) and (profile.ssh.host.startswith("-") or not profile.ssh.host.strip()):
        out.append(f"ssh.host: {profile.ssh.host!r} is not a host (ssh would read it as an option); "
                   "give a Host of your ~/.ssh/config or user@host, and put ssh options in ssh.options")
    return out


def _semantic_problems(profile: SiteProfile) -> list[str]:
    out = _script_text_problems(profile)
    times = [("default_time", profile.default_time)]
    for pname, part in profile.partitions.items():
        times += [(f"partitions.{pname}.max_time", part.max_time), (f"partitions.{pname}.default_time", part.default_time)]
    times += [(f"qos.{qname}.max_time", q.max_time) for qname, q in profile.qos.items()]
    for where, value in times:
        if value is not None:
            try:
                parse_time(value)
            except ValueError as exc:
                out.append(f"{where}: {exc}")
    for kind, classes in (("partitions", profile.partitions), ("qos", profile.qos)):
        for cname, c in classes.items():
            if c.default and c.role != "general":
                out.append(f"{kind}.{cname}: the default must have role general (it has {c.role!r}); move default: true to a general one")
    defaults = [n for n, p in profile.partitions.items() if p.default]
    if len(defaults) > 1:
        out.append(f"partitions: several have default: true ({', '.join(defaults)}); keep one")
    patterns = [("account.pattern", profile.account.pattern)]
    patterns += [(f"qos.{qname}.account_pattern", q.account_pattern) for qname, q in profile.qos.items()]
    for where, pattern in patterns:
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                out.append(f"{where}: not a valid regular expression ({exc})")
    for qname, q in profile.qos.items():
        for pname in q.partitions:
            if profile.partitions and pname not in profile.partitions:
                out.append(f"qos.{qname}.partitions: {pname!r} is not one of the partitions ({', '.join(profile.partitions)})")
        if q.min_nodes and q.max_nodes and q.min_nodes > q.max_nodes:
            out.append(f"qos.{qname}: min_nodes {q.min_nodes} is above max_nodes {q.max_nodes}")
    for pname, part in profile.partitions.items():
        for qname in part.qos:
            if qname not in profile.qos:
                out.append(f"partitions.{pname}.qos: {qname!r} is not declared under qos ({', '.join(profile.qos) or 'none'})")
    if profile.scratch_job_root:
        for name in re.findall(r"\{([^{}]*)\}", profile.scratch_job_root):
            if name not in _PLACEHOLDERS:
                out.append(f"scratch_job_root: {{{name}}} is not a placeholder; use {{account}} or {{user}}")
    for where, number in (("billing.per_node_hour", profile.billing.per_node_hour), ("billing.gpus_per_billed_gpu", profile.billing.gpus_per_billed_gpu),
                          ("billing.slice_cpus", profile.billing.slice_cpus), ("billing.slice_mem_gb", profile.billing.slice_mem_gb),
                          ("gpu_policy.cpus_per_gpu_max", profile.gpu_policy.cpus_per_gpu_max),
                          ("gpu_policy.cpus_per_gpu_min", profile.gpu_policy.cpus_per_gpu_min),
                          ("gpu_policy.cpus_per_gpu_fixed", profile.gpu_policy.cpus_per_gpu_fixed),
                          ("gpu_policy.mem_gb_per_gpu_max", profile.gpu_policy.mem_gb_per_gpu_max),
                          ("gpu_policy.cpus_per_gpu_default", profile.gpu_policy.cpus_per_gpu_default),
                          ("gpu_policy.mem_gb_per_gpu_default", profile.gpu_policy.mem_gb_per_gpu_default)):
        if number is not None and number <= 0:
            out.append(f"{where}: {number!r} must be > 0")
    for i, mask in enumerate(profile.cpu_bind_masks):
        if not re.fullmatch(r"0x[0-9a-fA-F]+", mask):
            out.append(f"cpu_bind_masks[{i}]: {mask!r} is not a hexadecimal CPU mask such as 0x00000000000000fe")
    for i, src in enumerate(profile.sources):
        if isinstance(src, Source) and not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", src.date):
            out.append(f"sources[{i}].date: {src.date!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
    if profile.status == "announced" and not profile.notice:
        out.append("notice: an announced site needs a notice (what is known, and when it opens)")
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _build(tp: Any, value: Any, where: str, problems: list[str]) -> Any:
    """Check ``value`` against the annotation ``tp`` and build dataclasses; collect problems."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f"{where or 'top level'}: expected a mapping, got {value!r}")
            return None
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        for key in value:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(sorted(names))})"
                problems.append(f"{where + '.' if where else ''}{key}: unknown key{hint}")
        kwargs = {}
        for f in dataclasses.fields(tp):
            sub = f"{where}.{f.name}" if where else f.name
            if f.name in value:
                kwargs[f.name] = _build(hints[f.name], value[f.name], sub, problems)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(f"{sub}: required key is missing")
        try:
            return tp(**kwargs)
        except TypeError:
            return None
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        real = [o for o in options if o is not type(None)]
        if len(real) == 1:  # X | None: X's own message ("is not one of ...")
            return _build(real[0], value, where, problems)
        for option in options:
            if option is type(None):
                continue
            trial: list[str] = []
            built = _build(option, value, where, trial)
            if not trial:
                return built
        problems.append(f"{where}: {value!r} is not {' or '.join(_type_name(o) for o in options)}")
        return None
    if origin is Literal:
        if value not in typing.get_args(tp):
            problems.append(f"{where}: {value!r} is not one of {', '.join(map(repr, typing.get_args(tp)))}")
        return value
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a mapping, got {value!r}")
            return {}
        return {str(k): _build(val_tp, v, f"{where}.{k}", problems) for k, v in value.items()}
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {value!r}")
            return []
        return [_build(item_tp, v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    if tp is str and where.startswith("env.") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # YAML reads `NCCL_NET_GDR_LEVEL: 3` as an int; the environment wants text
    problems.append(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return None
