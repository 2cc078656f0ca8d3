"""One site profile as text, for ``aifsdk sites show NAME``."""

from __future__ import annotations

from ._profile import SiteProfile, Source
from ._resources import format_time


def _limit(value: int | None) -> str:
    return "any" if value is None else str(value)


def _minutes(value: int | None) -> str:
    return "-" if value is None else format_time(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]


def describe(profile: SiteProfile) -> str:
    """Everything a profile says: hardware, partitions, QoS, account, GPU flag, billing, launch,
    environment, modules, storage and sources."""
    p = profile
    out = [f"{p.name}: {p.title}", f"  file:        {p.source_file}", f"  executor:    {p.executor}, status {p.status}"]
    if p.notice:
        out.append(f"  notice:      {p.notice}")
    if p.alternatives:
        out.append(f"  meanwhile:   {', '.join(p.alternatives)}")
    if p.hardware():
        out.append(f"  hardware:    {p.hardware()}")
    for label, value in (("GPU model", p.node.gpu_model), ("CPU model", p.node.cpu_model), ("network", p.node.interconnect)):
        if value:
            out.append(f"  {label + ':':<13}{value}")
    if p.partitions:
        out += ["", "partitions (role: general ones are chosen automatically, debug ones with partition='debug'):"]
        rows = [[name + (" *" if part.default else ""), part.role, f"{part.min_nodes or 1}-{_limit(part.max_nodes or part.node_count)}",
                 _minutes(part.max_minutes), _minutes(part.default_minutes), "yes" if part.exclusive else "no",
                 _limit(part.gpus_per_node), part.description] for name, part in p.partitions.items()]
        out += _table(["name (* default)", "role", "nodes", "max time", "default", "exclusive", "GPUs", "description"], rows)
    if p.qos:
        out += ["", f"QoS ({'required' if p.qos_required else 'optional'}; debug ones with qos='debug'):"]
        rows = [[name + (" *" if q.default else ""), q.role, f"{q.min_nodes or 1}-{_limit(q.max_nodes)}", _limit(q.max_gpus),
                 _minutes(q.max_minutes), q.account_pattern or "-", q.description] for name, q in p.qos.items()]
        out += _table(["name (* default)", "role", "nodes", "GPUs", "max time", "accounts", "description"], rows)
    acc = p.account
    out += ["", "account:     " + ("required" if acc.required else "optional")
            + (f", format {acc.pattern}" if acc.pattern else "") + (f", e.g. {acc.example}" if acc.example else "")
            + (f"; `{p.commands['accounts']}` lists yours" if "accounts" in p.commands else "")]
    flag = f"--gres={p.gres_name}:N" if p.gpu_request == "gres" else "--gpus-per-node=N"
    out.append(f"GPU flag:    {flag}")
    g = p.gpu_policy
    policy = [f"at least {g.cpus_per_gpu_min} cores per GPU" if g.cpus_per_gpu_min else "",
              f"at most {g.cpus_per_gpu_max} cores per GPU" if g.cpus_per_gpu_max else "",
              f"exactly {g.cpus_per_gpu_fixed} cores per GPU" if g.cpus_per_gpu_fixed else "",
              f"{g.cpus_per_gpu_default} cores per GPU by default" if g.cpus_per_gpu_default else "",
              f"at most {g.mem_gb_per_gpu_max:g} GB per GPU" if g.mem_gb_per_gpu_max else "",
              f"{g.mem_gb_per_gpu_default:g} GB per GPU by default" if g.mem_gb_per_gpu_default else "",
              "no --mem (memory follows the GPUs)" if not g.mem_request else "", g.note]
    if any(policy):
        out.append(f"GPU policy:  {'; '.join(x for x in policy if x)}")
    b = p.billing
    rate = f", 1 node-h = {b.per_node_hour:g} {b.unit}" if b.per_node_hour is not None else ""
    out.append(f"billing:     {b.unit}{rate}; shared nodes billed by {b.shared_by}"
               + (f"; {b.gpus_per_billed_gpu} Slurm GPUs = 1 billed GPU" if b.gpus_per_billed_gpu != 1 else ""))
    if b.note:
        out.append(f"             {b.note}")
    out.append(f"launch:      {p.launcher or 'srun (aifsdk default)'}" + (f": {p.launch_note}" if p.launch_note else ""))
    if p.launch_recipe:
        out.append("recipe:      GPU jobs get one rank per GPU, the cores and memory per GPU above"
                   + (", the CPU masks below on whole nodes" if p.cpu_bind_masks else "") + (" and the module lines below" if p.software.modules else ""))
    if p.cpu_bind_masks:
        out.append(f"CPU masks:   {','.join(p.cpu_bind_masks)} (one per node-local rank)")
    if p.srun_args:
        out.append(f"srun args:   {' '.join(p.srun_args)}")
    out.append(f"job folders: {p.scratch_job_root or p.job_root}" + (f" (without an account: {p.job_root})" if p.scratch_job_root else ""))
    for title, lines in (("environment", [f"{k}={v}" for k, v in p.env.items()]), ("setup lines", p.setup),
                         ("modules", p.software.modules), ("images", p.software.images),
                         ("storage", [f"{k}: {v}" for k, v in p.storage.items()]),
                         ("commands", [f"{k}: {v}" for k, v in p.commands.items()]), ("notes", p.notes)):
        if lines:
            out += ["", f"{title}:", *(f"  {line}" for line in lines)]
    if p.software.container_runtime:
        out.append(f"container runtime: {p.software.container_runtime}")
    out += ["", "sources:"]
    for src in p.sources:
        if isinstance(src, Source):
            out.append(f"  {src.fact}: {src.source} [{src.confidence}, {src.date}]" + (f" ({src.note})" if src.note else ""))
        else:
            out.append(f"  {src}")
    return "\n".join(out)
