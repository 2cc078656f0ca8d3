"""Interactive work on compute nodes: ``aifsdk shell`` and ``aifsdk jupyter``.

Both start from :func:`aifsdk.plan` with the same request, so they get the same checks, defaults
and cost as a batch job. ``shell`` asks Slurm for an allocation with ``salloc`` (the options of
the plan's script) and opens a shell on its first node with ``srun --pty``, inside the site's
container when there is one; on an SSH site the whole command runs on the login node through
``ssh -t``. ``jupyter`` submits a batch job that starts a Jupyter server on the compute node and
writes where it listens; the command then prints the ssh tunnel to it, the URL and the token.
"""

from __future__ import annotations

import json
import shlex
import socket
import time
from pathlib import Path
from typing import Any

from ._backends import backend_for
from ._errors import JobFailedError
from ._plan import Plan, plan
from ._planner import request_options

JUPYTER_FILE = "jupyter.json"


def _slurm_only(pl: Plan, what: str) -> None:
    """Refuse ``what`` before anything is asked of a site without a scheduler (its backend says why)."""
    backend = backend_for(pl.profile)
    if not backend.scheduled:
        raise backend.no_allocation(what)


def shell_plan(site: str, command: list[str] | None = None, **options: Any) -> Plan:
    """The plan of an interactive shell (never snapshots: nothing is shipped, the shell runs in place)."""
    pl = plan(command or ["bash"], site=site, snapshot=False, name=options.pop("name", None) or "shell", **options)
    _slurm_only(pl, "an interactive shell")
    from ._launch import refuse_wrong_cluster

    refuse_wrong_cluster(pl)  # salloc here would ask another cluster
    return pl


def shell_argv(pl: Plan, command: list[str] | None = None) -> list[str]:
    """salloc with the plan's request, then srun --pty of a shell (or ``command``) on the first node."""
    r = pl.resources
    flags = request_options(pl.profile, r, pl.name) + [(str(k).lstrip("-").replace("_", "-"), v) for k, v in sorted(r.extra.items()) if v is not False]
    salloc = ["salloc", *(f"--{k}" if v is True else f"--{k}={v}" for k, v in flags)]
    inner = list(command or ["bash", "-l"])
    if pl.container is not None:
        gpu_flag = []
        if r.gpus_per_node:
            model = (pl.profile.node.gpu_model or "").upper()
            gpu_flag = ["--rocm" if model.startswith(("MI", "AMD")) or "INSTINCT" in model else "--nv"]
        inner = [pl.container.runtime, "exec" if command else "shell", *gpu_flag, pl.container.image, *(command or [])]
    env = ",".join(["ALL", f"AIFSDK_SITE={pl.site}", *(f"{k}={v}" for k, v in pl.profile.env.items() if "," not in v)])
    srun = ["srun", "--pty", "--nodes=1", "--ntasks=1", f"--export={env}", *inner]
    return backend_for(pl.profile).terminal(salloc + srun)


# -- Jupyter ------------------------------------------------------------------------------------
# Runs on the compute node: a free port, a token made there, both written (0600) into the job folder
# ($SUBMITIT_FOLDER, set by aifsdk's job runner) for the command to read back, then the server. The
# token goes to the server in JUPYTER_TOKEN, never on a command line (`ps` shows those to everyone).
_JUPYTER_START = """
import json, os, secrets, socket, sys
s = socket.socket(); s.bind(("", 0)); port = s.getsockname()[1]; s.close()
token = secrets.token_hex(24)
path = os.path.join(os.environ["SUBMITIT_FOLDER"], "jupyter.json")
fd = os.open(path + ".part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
host = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
with os.fdopen(fd, "w") as f:
    json.dump({"host": host, "port": port, "token": token, "job_id": os.environ.get("SLURM_JOB_ID", "")}, f)
os.replace(path + ".part", path)
os.environ["JUPYTER_TOKEN"] = token
argv = [sys.executable, "-m", "jupyter", "server", "--no-browser", "--ip=0.0.0.0", f"--port={port}", "--port-retries=0",
        f"--ServerApp.root_dir={os.getcwd()}"] + (["--allow-root"] if os.getuid() == 0 else [])
print(f"aifsdk: Jupyter on {host}:{port}", flush=True)
os.execv(sys.executable, argv)
"""


def jupyter_command(python: str) -> list[str]:
    """The job's command: the site's Python runs the start-up above (jupyter-server must be installed there)."""
    return [*shlex.split(python), "-c", _JUPYTER_START]


def tunnel(pl: Plan, host: str, port: int, local_port: int) -> list[str]:
    """The ssh command that forwards ``local_port`` here to the server on the compute node, through
    the site's login node (the profile's ssh settings) or, for this machine's cluster, this host."""
    return backend_for(pl.profile).tunnel(f"{local_port}:{host}:{port}")


def free_local_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_jupyter(site: str, timeout_s: float = 600.0, **options: Any) -> tuple[Any, dict[str, Any]]:
    """Submit the Jupyter job and wait until it says where it listens. Returns the job and
    {host, port, token, url, tunnel, local_port}."""
    from ._job import Job

    probe = plan(["true"], site=site, snapshot=False, **{k: v for k, v in options.items() if k != "name"})
    _slurm_only(probe, "a Jupyter server")
    python = probe.python or "python3"
    pl = plan(jupyter_command(python), site=site, snapshot=False, name=options.pop("name", None) or "jupyter", **options)
    job: Job = pl.submit()
    deadline = time.monotonic() + timeout_s
    local = Path(job.folder) / JUPYTER_FILE
    while not local.exists():
        if job.done():
            raise JobFailedError(f"the Jupyter job {job.job_id} ended before its server started; see `aifsdk logs {job.job_id} --stderr`",
                                 job_id=job.job_id, folder=job.folder)
        if time.monotonic() > deadline:
            break
        time.sleep(1.0)
    where = json.loads(local.read_text()) if local.exists() else None
    if where is None:
        raise JobFailedError(f"the Jupyter job {job.job_id} has not started within {timeout_s:.0f} s (still queued?); "
                             f"it keeps its place: `aifsdk status {job.job_id}`, `aifsdk cancel {job.job_id}`", job_id=job.job_id, folder=job.folder)
    local_port = free_local_port()
    command = tunnel(pl, where["host"], where["port"], local_port)
    token = where["token"]
    return job, {"host": where["host"], "port": where["port"], "token": token, "local_port": local_port,
                 "url": f"http://localhost:{local_port}/?token={token}", "tunnel": command}
