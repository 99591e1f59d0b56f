"""The student's process (started by ``runner``, never imported by the server): import torch, say ``ready``,
wait for one job on stdin, set the resource limits, run the student's code, send one framed JSON reply.

Started as ``python -I child.py`` (isolated mode: no PYTHONPATH, no user site, not even this folder on
``sys.path``), so it loads ``wire.py`` by path. stdout is the reply pipe until the job arrives; then fds 1
and 2 point to /dev/null, so whatever the student prints costs CPU time and nothing else.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import resource
import sys
import traceback
from pathlib import Path

SOURCE = "<your code>"


def load_wire():
    spec = importlib.util.spec_from_file_location("ptqlab_wire", Path(__file__).with_name("wire.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tasks_of_my_user() -> int:
    """Threads of this user now (what RLIMIT_NPROC counts), as far as /proc shows them."""
    uid, count = os.getuid(), 0
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and os.stat(f"/proc/{pid}").st_uid == uid:
                count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return count


def virtual_memory() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def set_limits(limits: dict) -> None:
    """CPU seconds counted from now (the kernel's limit is whole seconds: soft rounds up, SIGKILL 1 s later),
    address space = what torch mapped + the budget, small files, a few more processes, few open files."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(used.ru_utime + used.ru_stime + limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))
    memory = virtual_memory() + limits["memory_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"],) * 2)
    procs = tasks_of_my_user() + limits["processes"]
    resource.setrlimit(resource.RLIMIT_NPROC, (procs, procs))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def where(exc: BaseException) -> str:
    """The exception and the line of the student's code it came from."""
    if isinstance(exc, SyntaxError) and exc.filename == SOURCE:
        return f"line {exc.lineno}: SyntaxError: {exc.msg}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == SOURCE]
    text = (f"line {frames[-1].lineno}: " if frames else "") + f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SystemExit | KeyboardInterrupt):
        text += " (your code tried to stop the process: return a value instead)"
    elif isinstance(exc, MemoryError) or "can't allocate memory" in str(exc):
        text += " (your code asked for more memory than a check may use)"
    return text


def lookup(table: dict):
    def accuracy_with_only(name):
        if name not in table:
            raise KeyError(f"no layer named {name!r}")
        return table[name]

    return accuracy_with_only


def argument(a):
    return lookup(a[1]) if isinstance(a, tuple) and len(a) == 2 and a[0] == "__lookup__" else a


def call_each(function_named, calls: list) -> list:
    """``function_named(name)(*args)`` for each ``(name, args)`` in order; NameError for a missing function."""
    results = []
    for name, args in calls:
        function = function_named(name)
        if not callable(function):
            raise NameError(f"define a function named {name}")
        results.append(function(*[argument(a) for a in args]))
    return results


def execute(torch, source: str, calls: list) -> tuple[str, object]:
    """exec ``source`` in a fresh namespace, then call each ``(name, args)``; any exception is a verdict."""
    namespace = {"__name__": "exercise", "torch": torch, "math": math}
    try:
        exec(compile(source, SOURCE, "exec"), namespace)
        return "ok", call_each(namespace.get, calls)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are the student's too
        return "error", where(exc)


def frame(status: str, value, wire) -> bytes:
    try:
        body = json.dumps([status, wire.to_wire(value)], separators=(",", ":")).encode()
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        body = json.dumps(["error", f"your function returned something that cannot be sent back ({exc})"])
        body = body.encode()
    return b"%d\n" % len(body) + body


def main() -> None:
    reply = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 2)
    import torch

    torch.set_num_threads(1)
    wire = load_wire()
    reply.write(b"ready\n")
    job = json.loads(sys.stdin.buffer.read())
    os.dup2(null, 1)
    os.dup2(null, 0)
    me = os.getpid()
    calls = wire.from_wire(job["calls"])  # the check's own work: before the student's CPU time starts
    set_limits(job["limits"])
    status, value = execute(torch, job["source"], calls)
    if os.getpid() == me:  # a process the student forked returns here too: it must not answer
        reply.write(frame(status, value, wire))
    os._exit(0)


if __name__ == "__main__":
    main()
