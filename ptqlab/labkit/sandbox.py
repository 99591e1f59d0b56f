"""How the student's process is started and ended: the command line (bubblewrap where it works, else a plain
isolated Python in its own session), the clean environment, and the sweep that leaves no process behind.

With bubblewrap the child sees the whole file system read-only except its scratch directory (home folders,
/root, /tmp, /run and /var/tmp replaced by empty ones), has no network, runs as ``nobody`` in a user
namespace with no capabilities, and lives in its own PID namespace: it cannot see or signal the server, and
every process it starts dies with the namespace when the runner kills bubblewrap.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BWRAP = "/usr/bin/bwrap"
NOBODY = 65534
HIDDEN = ("/home", "/root", "/tmp", "/var/tmp", "/run")  # replaced by empty tmpfs in the sandbox
CHILD = Path(__file__).with_name("child.py")


def environment(scratch: str, marker: str) -> dict[str, str]:
    """The whole environment of the child: nothing of the server's (no tokens, no paths, no proxies)."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": scratch,
        "TMPDIR": scratch,
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "PTQLAB_CHECK": marker,
    }


def _needed_paths() -> list[str]:
    """Folders the child must read even if they sit under a hidden one: Python, its packages, this folder."""
    torch = importlib.util.find_spec("torch")
    paths = {sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent), str(CHILD.parent)}
    if torch is not None and torch.origin:
        paths.add(str(Path(torch.origin).resolve().parent.parent))
    return sorted(p for p in paths if any(p == h or p.startswith(h + "/") for h in HIDDEN))


def bwrap_argv(scratch: str) -> list[str]:
    argv = [BWRAP, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for hidden in HIDDEN:
        if os.path.isdir(hidden):
            argv += ["--tmpfs", hidden]
    for path in _needed_paths():
        argv += ["--ro-bind", path, path]
    argv += ["--bind", scratch, scratch, "--chdir", scratch]
    argv += ["--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    return argv + ["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--"]


@functools.cache
def bwrap_works() -> bool:
    """Whether bubblewrap can start a sandbox here (it needs unprivileged user namespaces or root)."""
    if os.environ.get("PTQLAB_SANDBOX") == "none" or not os.access(BWRAP, os.X_OK):
        return False
    scratch = tempfile.mkdtemp(prefix="ptqlab-probe-")
    try:
        done = subprocess.run(
            [*bwrap_argv(scratch), "/bin/true"], capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        remove(scratch)
    return done.returncode == 0


def command(scratch: str) -> list[str]:
    python = [sys.executable, "-I", str(CHILD)]
    return [*bwrap_argv(scratch), *python] if bwrap_works() else python


def _others_can_run_python() -> bool:
    """Whether a user other than the owner can reach and run this Python and its packages (0o001 bits)."""
    paths = [Path(sys.executable).resolve(), Path(sys.prefix).resolve(), CHILD.resolve()]
    for path in paths:
        for part in [path, *path.parents]:
            if not part.stat().st_mode & 0o001:
                return False
    return True


@functools.cache
def drops_to_nobody() -> bool:
    """Without bubblewrap, a server running as root starts the child as ``nobody`` (where ``nobody`` can
    run this Python: not when it lives under a private folder such as /root)."""
    return not bwrap_works() and os.geteuid() == 0 and _others_can_run_python()


def start(scratch: str, marker: str) -> subprocess.Popen:
    """The child, in its own session, stdin a pipe (the job), stdout a pipe (the reply), stderr discarded."""
    extra = {}
    if drops_to_nobody():
        os.chown(scratch, NOBODY, NOBODY)
        extra = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    return subprocess.Popen(
        command(scratch),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=scratch,
        env=environment(scratch, marker),
        start_new_session=True,
        close_fds=True,
        **extra,
    )


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from the state on (the name may hold spaces)


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := _stat(int(name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def usage(root: int) -> tuple[float, float, int]:
    """(CPU seconds used, seconds spent waiting for a processor, processes) by ``root``'s process tree."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu = waited = 0.0
    tree = descendants(root)
    for pid in tree:
        if (fields := _stat(pid)) is not None:
            cpu += (int(fields[11]) + int(fields[12])) / tick
        try:
            waited += int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            pass
    return cpu, waited, len(tree)


def _marked(pid: int, marker: str) -> bool:
    try:
        return f"PTQLAB_CHECK={marker}".encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def kill_all(proc: subprocess.Popen, marker: str) -> None:
    """SIGKILL the child's process group, its tree, and (without a PID namespace) any process that still
    carries this check's marker in its environment (a detached grandchild that left the session); reap."""
    pids = set(descendants(proc.pid))
    if not bwrap_works():
        pids |= {int(n) for n in os.listdir("/proc") if n.isdigit() and _marked(int(n), marker)}
    for kill in (
        lambda: os.killpg(proc.pid, signal.SIGKILL),
        *[functools.partial(os.kill, p, 9) for p in pids],
    ):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()
    deadline = time.monotonic() + 5  # a namespace of many processes takes a moment to tear down
    while any(_stat(p) is not None and _stat(p)[0] != "Z" for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def remove(scratch: str) -> None:
    shutil.rmtree(scratch, ignore_errors=True)
