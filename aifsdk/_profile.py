"""Site profiles: the schema, where profiles live, and loading them with every problem reported.

A site profile is a YAML file in the Hydra config group ``site`` (``configs/site/<name>.yaml``).
The shipped ones come inside the installed package (``aifsdk/configs``); a user's own files in
``$AIFSDK_CONFIG_DIR/site/`` (default ``~/.config/aifsdk/site/``) add sites or replace shipped
ones of the same name. The schema is the dataclasses below; unknown keys and wrong types are
errors that name the file, the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ._errors import Problem, ProfileError, SiteNotFoundError
from ._resources import parse_time


@dataclass(frozen=True, kw_only=True)
class Partition:
    """Limits of one partition (or QoS). ``None`` means unknown or unlimited."""

    description: str = ""
    default: bool = False
    max_nodes: int | None = None
    max_time: int | str | None = None
    default_time: int | str | None = None
    exclusive: bool = False
    gpus_per_node: int | None = None
    cpus_per_node: int | None = None
    mem_gb: float | None = None

    @property
    def max_minutes(self) -> int | None:
        return None if self.max_time is None else parse_time(self.max_time)

    @property
    def default_minutes(self) -> int | None:
        return None if self.default_time is None else parse_time(self.default_time)


@dataclass(frozen=True, kw_only=True)
class Node:
    """One compute node as the scheduler sees it."""

    gpus: int | None = None
    gpu_model: str | None = None
    gpu_mem_gb: float | None = None
    cpus: int | None = None
    mem_gb: float | None = None
    arch: str | None = None


@dataclass(frozen=True, kw_only=True)
class Account:
    required: bool = False
    pattern: str | None = None
    example: str | None = None


@dataclass(frozen=True, kw_only=True)
class Billing:
    """How the site charges: ``unit`` is what an allocation is counted in."""

    unit: Literal["gpu-hours", "node-hours", "core-hours"] = "gpu-hours"
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class SiteProfile:
    """Everything aifsdk knows about one site. See configs/site/*.yaml for examples."""

    name: str
    executor: Literal["local", "debug", "slurm"]
    title: str = ""
    status: Literal["available", "announced"] = "available"
    discover: bool = False
    default_time: int | str | None = None
    gpu_request: Literal["gpus-per-node", "gres"] = "gpus-per-node"
    gres_name: str = "gpu"
    job_root: str = "~/.aifsdk/jobs"
    python: str | None = None
    signal_delay_s: int = 90
    node: Node = field(default_factory=Node)
    partitions: dict[str, Partition] = field(default_factory=dict)
    account: Account = field(default_factory=Account)
    billing: Billing = field(default_factory=Billing)
    env: dict[str, str] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    source_file: str = ""

    @property
    def default_partition(self) -> str | None:
        for name, part in self.partitions.items():
            if part.default:
                return name
        return None


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


def site_files() -> dict[str, Path]:
    """Site name -> profile file; user files replace shipped ones of the same name."""
    found: dict[str, Path] = {}
    for root in (shipped_config_dir(), user_config_dir()):
        folder = root / "site"
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                found[path.stem] = path
    return found


_CACHE: dict[Path, tuple[int, SiteProfile]] = {}


def load_site(name: str) -> SiteProfile:
    """Load and check the profile of site ``name``."""
    files = site_files()
    if not isinstance(name, str) or name not in files:
        close = difflib.get_close_matches(str(name), files, n=3)
        fix = f"did you mean {', '.join(close)}?" if close else "run `aifsdk sites` to list them"
        fix += f"; or add your own in {user_config_dir() / 'site' / (str(name) + '.yaml')}"
        raise SiteNotFoundError([Problem("site", name, f"one of {', '.join(sorted(files))}", fix)])
    path = files[name]
    mtime = path.stat().st_mtime_ns
    cached = _CACHE.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    profile = parse_profile(path.read_text(), name=name, source=path)
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


def _semantic_problems(profile: SiteProfile) -> list[str]:
    out = []
    times = [("default_time", profile.default_time)]
    for pname, part in profile.partitions.items():
        times += [(f"partitions.{pname}.max_time", part.max_time), (f"partitions.{pname}.default_time", part.default_time)]
    for where, value in times:
        if value is not None:
            try:
                parse_time(value)
            except ValueError as exc:
                out.append(f"{where}: {exc}")
    defaults = [n for n, p in profile.partitions.items() if p.default]
    if len(defaults) > 1:
        out.append(f"partitions: several have default: true ({', '.join(defaults)}); keep one")
    if profile.account.pattern:
        try:
            re.compile(profile.account.pattern)
        except re.error as exc:
            out.append(f"account.pattern: not a valid regular expression ({exc})")
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
