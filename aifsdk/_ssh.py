"""Submitting from a laptop: one reused SSH connection to a site's login node.

aifsdk handles no password and no key: it runs the user's own ``ssh`` (their ``~/.ssh/config``,
agent, ProxyJump, short-lived certificates; 2FA prompts happen in ssh itself), opens one master
connection (OpenSSH ControlMaster) that every later command and rsync reuses, and says what to do
when the connection or the cluster-side Python environment is missing.

A site profile names the host in an ``ssh`` block::

    ssh:
      host: lumi                      # a Host of ~/.ssh/config, or user@host
      python: /project/project_465000001/venv/bin/python
      setup: ["module load cray-python"]
      job_root: /scratch/project_465000001/$USER/aifsdk
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._errors import Problem, RequestError, SchedulerError
from ._profile import Ssh

# How the cluster side reports its versions (run with the profile's python, after its setup lines).
_PROBE = (
    "import json, sys\n"
    "out = {'python': '%d.%d.%d' % sys.version_info[:3]}\n"
    "for name in ('aifsdk', 'submitit', 'cloudpickle'):\n"
    "    try:\n"
    "        out[name] = __import__(name).__version__\n"
    "    except Exception as exc:\n"
    "        out[name] = None\n"
    "        out[name + '_error'] = '%s: %s' % (type(exc).__name__, exc)\n"
    "print('AIFSDK-PROBE ' + json.dumps(out))\n"
)


def _control_dir() -> Path:
    """A short private folder for the master connection's socket (Unix sockets allow ~100 bytes)."""
    path = Path(tempfile.gettempdir()) / f"aifsdk-ssh-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.lstat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077 or path.is_symlink():
        raise SchedulerError(f"{path} is not a private folder of this user; remove it and try again")
    return path


class SSH:
    """Runs commands and copies files over one reused connection to ``spec.host``.

    ``retries``: how many times a command whose connection failed (ssh's exit code 255: network
    drop, stale master, login node restarted) is tried again, each after re-opening the master.
    """

    def __init__(self, spec: Ssh, retries: int = 2, connect_timeout_s: int = 20, probe_setup: tuple[str, ...] = ()) -> None:
        self.spec = spec
        self.retries = retries
        self.connect_timeout_s = connect_timeout_s
        self.probe_setup = probe_setup  # the site's own setup lines (module loads), run before the version probe
        self.calls = 0
        self._expanded: dict[str, str] = {}
        self._user_roots: dict[str, str] = {}
        self._environment: dict[str, Any] | None = None

    @property
    def python(self) -> str:
        return self.spec.python or "python3"

    # -- the ssh command ------------------------------------------------------------------
    def options(self) -> list[str]:
        opts = [
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={_control_dir()}/%C",
            "-o", "ControlPersist=600",
            "-o", f"ConnectTimeout={self.connect_timeout_s}",
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=3",
        ]
        if not sys.stdin.isatty():  # nobody to answer a prompt: fail at once instead of hanging
            opts += ["-o", "BatchMode=yes"]
        for option in self.spec.options:
            opts += ["-o", option]
        if self.spec.config:
            opts = ["-F", os.path.expanduser(self.spec.config), *opts]
        return opts

    def argv(self, command: str) -> list[str]:
        return ["ssh", *self.options(), self.spec.host, command]

    # -- running ----------------------------------------------------------------------------
    def run(self, command: str | list[str], timeout: float = 120.0, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command on the login node (a list is quoted for the remote shell)."""
        text = command if isinstance(command, str) else shlex.join(command)
        if shutil.which("ssh") is None:
            raise SchedulerError("ssh is not installed on this machine; install OpenSSH's client (package openssh-client)")
        proc: subprocess.CompletedProcess[str] | None = None
        for attempt in range(self.retries + 1):
            self.calls += 1
            try:
                proc = subprocess.run(self.argv(text), capture_output=True, text=True, timeout=timeout, input=input,
                                      stdin=None if input is not None else subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise SchedulerError(f"`{text}` on {self.spec.host} did not answer within {timeout:.0f} s") from None
            if proc.returncode != 255:
                break
            self.close()  # a dead master would fail every later command: open a new one
            if attempt < self.retries:
                time.sleep(min(2.0 * (attempt + 1), 5.0))
        if proc.returncode == 255:
            raise SchedulerError(
                f"cannot reach {self.spec.host} over SSH: {proc.stderr.strip() or 'connection failed'}\n"
                f"Check that `ssh {self.spec.host}` works from this shell (keys loaded in your agent, ProxyJump, "
                "a valid certificate); aifsdk uses your own SSH configuration and stores no password."
            )
        if check and proc.returncode != 0:
            raise SchedulerError(f"`{text}` failed on {self.spec.host} with exit code {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def close(self) -> None:
        """Close the master connection (later commands open a new one)."""
        subprocess.run(["ssh", *self.options(), "-O", "exit", self.spec.host], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)

    # -- paths and files ----------------------------------------------------------------------
    def expand(self, template: str) -> str:
        """A cluster-side path with ``~`` and ``$VARS`` expanded by the login node's shell (once)."""
        if template not in self._expanded:
            if any(c in template for c in '"`\\\n'):
                raise RequestError([Problem("ssh.job_root", template, "a path with ~ and $VARS only",
                                            "remove quotes, backquotes and backslashes from the path")])
            text = "$HOME" + template[1:] if template.startswith("~") else template
            proc = self.run(f'set -u; printf "%s\\n" "{text}"', timeout=60, check=False)
            out = proc.stdout.strip()
            if proc.returncode != 0:  # set -u: an unset variable is an error, not an empty string
                raise RequestError([Problem("ssh.job_root", template, f"variables that are set on {self.spec.host}",
                                            f"{proc.stderr.strip()}; use a variable defined in a non-interactive shell there, or an absolute path")])
            if not out.startswith("/"):
                raise RequestError([Problem("ssh.job_root", template, "an absolute path on the cluster once expanded",
                                            f"it expands to {out!r} on {self.spec.host}; set a variable that is defined there, or an absolute path")])
            self._expanded[template] = out
        return self._expanded[template]

    def _owner_and_modes(self, paths: list[str], create: bool) -> tuple[str, list[tuple[str | None, int] | None]]:
        """The cluster account's name, and of each path there (None: missing) its owner (None: that
        account) and mode, in one command; with ``create``, missing folders (and parents) are made
        0700 first. The paths are taken in order, up to the first that is missing or not private
        (nothing is made inside a folder that is refused)."""
        quoted = " ".join(shlex.quote(p) for p in paths)
        make = 'mkdir -p -- "$p" 2>/dev/null; ' if create else ""  # below, 18 is 0o022: its group or others may write
        proc = self.run(f"umask 077; me=$(id -u); echo $me; id -un; for p in {quoted}; do {make}"
                        "s=$(stat -L -c '%u %U %a' -- \"$p\" 2>/dev/null) || { echo missing; break; }; echo \"$s\"; "
                        'set -- $s; [ "$1" = "$me" ] && [ $((0$3 & 18)) -eq 0 ] || break; done', timeout=60)
        lines = proc.stdout.splitlines()
        uid, name, rows = lines[0].strip(), lines[1].strip(), lines[2:2 + len(paths)]
        found: list[tuple[str | None, int] | None] = []
        for row in rows:
            parts = row.split()
            found.append(None if len(parts) != 3 else (None if parts[0] == uid else parts[1], int(parts[2], 8)))
        return name, found

    def user_root(self, root: str) -> str:
        """Where the cluster account's job folders go under the job root ``root`` (expanded there):
        the root itself when it is the account's own and only it may write to it (or it does not
        exist yet), else a folder named after the account under it (a project's shared scratch), as
        :func:`aifsdk._paths.user_root` decides here. Reads only; asked once per process."""
        if root not in self._user_roots:
            from ._paths import not_private

            name, (found,) = self._owner_and_modes([root], create=False)
            shared = found is not None and not_private(found[0], name, found[1]) is not None
            self._user_roots[root] = f"{root.rstrip('/')}/{name}" if shared else root
        return self._user_roots[root]

    def ensure_private(self, folders: list[tuple[str, str]]) -> None:
        """Create each ``(path, what)`` folder on the cluster 0700 (missing parents too) whatever the
        umask, or check that an existing one is the cluster account's own and not writable by its
        group or others; else StorageError naming the folder, its owner or mode, and the fix, as
        :func:`aifsdk._paths.ensure_private` does here. One command for all of them."""
        from ._errors import StorageError
        from ._paths import not_private, untrusted_folder

        name, found = self._owner_and_modes([p for p, _ in folders], create=True)
        for (path, what), row in zip(folders, found):
            if row is None:
                raise StorageError(f"creating {what} {path} on {self.spec.host} failed. Fix: check that you may write there "
                                   f"(ssh {self.spec.host} ls -ld {shlex.quote(str(Path(path).parent))}), or point ssh.job_root "
                                   "in the site profile at a folder of your own", path=path)
            why = not_private(row[0], name, row[1])
            if why is not None:
                raise untrusted_folder(f"on {self.spec.host}, {what}", path, why, owned=row[0] is None,
                                       chmod=f"ssh {self.spec.host} chmod 700 {shlex.quote(path)}")

    def _rsync(self, args: list[str], what: str) -> None:
        if shutil.which("rsync") is None:
            raise SchedulerError("rsync is not installed on this machine; install it (package rsync) to submit over SSH")
        ssh_cmd = shlex.join(["ssh", *self.options()])
        for attempt in range(self.retries + 1):
            self.calls += 1
            proc = subprocess.run(["rsync", "-e", ssh_cmd, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if proc.returncode == 0:
                return
            if "command not found" in proc.stderr or proc.returncode == 127:
                raise SchedulerError(f"rsync is missing on {self.spec.host}; ask the site to install it, or load its module")
            if proc.returncode not in (12, 30, 35, 255):  # 12/30/35/255: the connection, not the files
                break
            self.close()
            if attempt < self.retries:
                time.sleep(min(2.0 * (attempt + 1), 5.0))
        raise SchedulerError(f"copying {what} over SSH to/from {self.spec.host} failed (rsync exit {proc.returncode}): {proc.stderr.strip()}")

    def push(self, local: Path, remote: str, link_dest: str | None = None, exclude: tuple[str, ...] = (),
             rules: tuple[str, ...] = ()) -> None:
        """Copy a local folder to the cluster. With ``link_dest`` (a folder there), files equal to
        theirs in size and mtime (to the nanosecond) become hard links to them instead of copies.
        ``rules``: rsync filter rules (``--include=...``/``--exclude=...``, first match wins)."""
        args = ["-a", "--mkpath", "--modify-window=-1", *(f"--exclude={pattern}" for pattern in exclude), *rules]
        if link_dest:
            args.append(f"--link-dest={link_dest}")
        self._rsync([*args, f"{local}/", f"{self.spec.host}:{remote}/"], f"{local}")

    def pull(self, remote: str, local: Path, exclude: tuple[str, ...] = ()) -> None:
        """Copy what is new in a cluster folder back (results, logs); never deletes local files."""
        self.pull_filtered(remote, local, tuple(f"--exclude={pattern}" for pattern in exclude))

    def pull_filtered(self, remote: str, local: Path, rules: tuple[str, ...]) -> None:
        """``pull`` with rsync filter rules (``--include=...``/``--exclude=...``, first match wins).
        What comes back is the local user's and private to them (aifsdk trusts only such folders)."""
        local.mkdir(parents=True, exist_ok=True)
        self._rsync(["-a", "--no-owner", "--no-group", "--chmod=go-rwx", "--modify-window=-1", *rules, f"{self.spec.host}:{remote}/", f"{local}/"], f"{remote}")

    # -- the cluster-side Python ---------------------------------------------------------------
    def environment(self) -> dict[str, Any]:
        """Versions of Python, aifsdk, submitit and cloudpickle on the cluster side (cached)."""
        if self._environment is None:
            lines = [*self.probe_setup, *self.spec.setup, f"{self.python} -c {shlex.quote(_PROBE)}"]
            proc = self.run(" && ".join(lines), check=False, timeout=180)
            found = next((ln for ln in proc.stdout.splitlines() if ln.startswith("AIFSDK-PROBE ")), None)
            if found is None:
                raise RequestError([Problem(
                    "ssh.python", self.python, f"a Python interpreter on {self.spec.host}",
                    f"running it failed (exit {proc.returncode}: {proc.stderr.strip()[-300:]}); point ssh.python in the site "
                    "profile at the cluster's environment (a venv's bin/python), or add the module line that provides it to ssh.setup")])
            self._environment = json.loads(found.removeprefix("AIFSDK-PROBE "))
        return self._environment

    def check_environment(self, kind: str) -> list[Problem]:
        """What does not match between this machine and the cluster side, each with the fix.

        A function job is pickled here and unpickled there: Python's major.minor and the exact
        cloudpickle and aifsdk versions must match. A command job only needs aifsdk and submitit there.
        """
        import cloudpickle

        from ._version import __version__

        there = self.environment()
        here = {"python": "%d.%d.%d" % sys.version_info[:3], "aifsdk": __version__, "cloudpickle": cloudpickle.__version__}
        where = f"{self.python} on {self.spec.host}"
        problems = []
        for name in ("aifsdk", "submitit", "cloudpickle"):
            if there.get(name) is None:
                pin = f"=={here[name]}" if name in here else ""
                problems.append(Problem("ssh.python", where, f"{name} importable there",
                                        f"{there.get(name + '_error', 'not importable')}; install it there: "
                                        f"ssh {self.spec.host} {shlex.quote(f'{self.python} -m pip install {name}{pin}')}"))
        if problems or kind != "function":
            return problems
        if there["python"].split(".")[:2] != here["python"].split(".")[:2]:
            problems.append(Problem("ssh.python", where, f"Python {'.'.join(here['python'].split('.')[:2])} (as here: functions are pickled by value)",
                                    f"it has Python {there['python']}; use a cluster environment with the same Python minor version, "
                                    "or submit a command instead of a function"))
        for name in ("aifsdk", "cloudpickle"):
            if there[name] != here[name]:
                problems.append(Problem("ssh.python", where, f"{name}=={here[name]} (as here)",
                                        f"it has {name} {there[name]}; run: ssh {self.spec.host} "
                                        f"{shlex.quote(f'{self.python} -m pip install {name}=={here[name]}')}"))
        return problems
