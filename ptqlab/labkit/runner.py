"""The one runner every lab's "Check my code" goes through: the student's code runs in a fresh, contained
process and only plain data comes back.

- a fresh ``python -I`` (not a fork of the server), clean environment, scratch working directory, under
  bubblewrap where it works (``protection()`` says which applies on this machine);
- limits set before the student's code starts: CPU time (``time_limit_s``, counted from the student's first
  line), address space, file size, processes, open files; output to /dev/null;
- a wall-clock backstop (``wall_limit_s``) for the whole reply; at the end the child's session, tree and
  namespace are killed, so nothing it started survives the verdict;
- the reply is JSON (``wire``): tensors are rebuilt from numbers, nothing the child wrote is unpickled.

One idle child that has already imported torch is kept ready (``prestart``), so a check does not wait for
torch's import; each child runs one check, and its replacement starts as soon as it is taken.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from subprocess import Popen

import ptqlab.labkit.sandbox as sandbox
import ptqlab.labkit.wire as wire

TIME_LIMIT_S = 3.0  # CPU seconds for the student's code
LIMITS = {"memory_bytes": 1 << 30, "file_bytes": 1 << 20, "processes": 32, "open_files": 64}
REPLY_CAP = 32 << 20  # bytes of JSON a reply may hold
START_WAIT_S = 60.0  # for a child that is still importing torch
_SPARE: list[Child] = []
_LOCK = threading.Lock()


def wall_limit(time_limit_s: float) -> float:
    """The wall-clock backstop for a CPU limit: room for a busy server, never endless."""
    return max(4 * time_limit_s, time_limit_s + 8)


@dataclass
class Child:
    proc: Popen
    scratch: str
    marker: str
    buffer: bytearray = field(default_factory=bytearray)

    def read(self, deadline: float) -> bool | None:
        """Read what is there until ``deadline``: True if bytes came, False at EOF, None at the deadline."""
        fd = self.proc.stdout.fileno()
        while (left := deadline - time.monotonic()) > 0:
            if select.select([fd], [], [], min(left, 0.1))[0]:
                chunk = os.read(fd, 1 << 16)
                self.buffer += chunk
                return bool(chunk)
            if self.proc.poll() is not None and not select.select([fd], [], [], 0)[0]:
                return False
        return None


def _new_child() -> Child:
    scratch = tempfile.mkdtemp(prefix="ptqlab-check-")
    marker = os.urandom(8).hex()
    return Child(sandbox.start(scratch, marker), scratch, marker)


def _end(child: Child) -> None:
    sandbox.kill_all(child.proc, child.marker)
    sandbox.remove(child.scratch)


def prestart() -> None:
    """Start the idle child now (a lab server calls this before serving; each check calls it after)."""
    with _LOCK:
        if _SPARE and _SPARE[0].proc.poll() is not None:
            _end(_SPARE.pop())
        if not _SPARE:
            _SPARE.append(_new_child())


def _take() -> Child:
    with _LOCK:
        child = _SPARE.pop() if _SPARE else None
    if child is None or child.proc.poll() is not None:
        if child is not None:
            _end(child)
        child = _new_child()
    return child


@atexit.register
def _shutdown() -> None:
    with _LOCK:
        while _SPARE:
            _end(_SPARE.pop())


def protection() -> str:
    """One sentence: what contains student code on this machine."""
    limits = (
        f"CPU time {TIME_LIMIT_S:g} s per check (wall-clock backstop {wall_limit(TIME_LIMIT_S):g} s), "
        f"{LIMITS['memory_bytes'] >> 20} MiB more memory than torch's import, files up to "
        f"{LIMITS['file_bytes'] >> 20} MiB, {LIMITS['processes']} more processes, {LIMITS['open_files']} open files"
    )
    if sandbox.bwrap_works():
        return (
            "Student code runs in a fresh isolated Python under bubblewrap: the file system is read-only except "
            "its scratch directory (home folders, /root and /tmp are empty), no network, its own PID namespace "
            f"(it cannot see or signal the server), as nobody without capabilities; limits: {limits}."
        )
    user = "as nobody" if sandbox.drops_to_nobody() else "as the server's user"
    return (
        f"Student code runs in a fresh isolated Python in its own session, {user}, WITHOUT a namespace sandbox "
        "(bubblewrap is not available here): it can read (and, as the server's user, write) what that user can, "
        f"open network connections and see other processes; limits: {limits}."
    )


def _parse(child: Child, calls: int) -> tuple[str, object] | None:
    """The framed reply once complete: ``<length>\\n<json>``; None while incomplete."""
    head, sep, body = bytes(child.buffer).partition(b"\n")
    if not sep:
        if len(head) > 12:
            return "error", "the reply from your code's process could not be read"
        return None
    if not head.isdigit() or int(head) > REPLY_CAP:
        return "error", "the reply from your code's process could not be read (or was too large)"
    if len(body) < int(head):
        return None
    try:
        status, value = wire.loads(body[: int(head)])
    except (ValueError, RecursionError, TypeError):
        return "error", "the reply from your code's process could not be read"
    if status == "ok" and isinstance(value, list) and len(value) == calls:
        return "ok", value
    if status == "error" and isinstance(value, str):
        return "error", value
    return "error", "the reply from your code's process could not be read"


def _died(child: Child, limit: float, cpu: float) -> tuple[str, str]:
    code = child.proc.wait()
    sig = -code if code < 0 else code - 128 if code > 128 and sandbox.bwrap_works() else 0
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limit):
        return "timeout", (
            f"your code used more than its {limit:g} s CPU time limit (an endless loop?) and was stopped"
        )
    if sig == signal.SIGKILL:
        return "error", "the process running your code was killed (it used too much memory?)"
    if sig > 0:
        return "error", f"the process running your code crashed ({signal.Signals(sig).name})"
    return "error", (
        f"your code ended the process that ran it (exit status {code}, e.g. os._exit or exit()) before "
        "returning: return a value instead"
    )


def overrun_verdict(cpu: float, waited: float, wall: float, limit: float) -> tuple[str, str]:
    """Who is to blame at the wall-clock backstop, where the CPU limit has *not* stopped the code (an endless
    loop meets that first): of the ``wall`` seconds, the code ran ``cpu`` and was ready but waited ``waited``
    for a processor (the kernel's run delay). Mostly neither running nor ready means it slept or blocked
    (sleep, input, a pipe, a lock): ("timeout", why). Otherwise the server was too busy to give the code its
    CPU time: ("busy", why), which tells the student to press the button again."""
    if wall - cpu - waited > 0.5 * wall:
        return "timeout", (
            f"your code waited (sleep, input, a pipe or a lock) for {wall:g} s without finishing, using "
            f"{cpu:.1f} s of CPU; it was stopped at the time limit's wall-clock backstop"
        )
    used = (
        f" It had used {cpu:.1f} s of its {limit:g} s: if the next check stops it at its CPU time limit, "
        "look for an endless loop."
        if cpu > 0.5 * limit
        else ""
    )
    return "busy", (
        f"the server is busy and could not finish your check in time: in {wall:.3g} s your code got only "
        f"{cpu:.1f} s of CPU and waited {waited:.1f} s for a processor. The time limit counts CPU time "
        f"({limit:g} s), so this is not your code's fault: press **Check my code** again in a moment.{used}"
    )


def _collect(child: Child, calls: int, limit: float, wall: float) -> tuple[str, object]:
    base_cpu, base_wait, base_count = sandbox.usage(child.proc.pid)
    start = time.monotonic()
    while (reply := _parse(child, calls)) is None:
        if len(child.buffer) > REPLY_CAP:
            return "error", "your code's reply was too large"
        got = child.read(start + wall)
        if got is None or got is False:
            cpu, waited, count = sandbox.usage(child.proc.pid)
            cpu, waited = cpu - base_cpu, waited - base_wait
            if got is None and count > base_count + 4:
                return (
                    "timeout",
                    f"your code started {count - base_count} processes and ran past the time limit",
                )
            if got is None:
                return overrun_verdict(cpu, waited, wall, limit)
            return _died(child, limit, cpu)
    return reply


def _started(child: Child) -> bool:
    deadline = time.monotonic() + START_WAIT_S
    while not child.buffer.startswith(b"ready\n"):
        if len(child.buffer) >= 6 or not child.read(deadline):
            return False
    del child.buffer[:6]
    return True


def run_student_code(
    source: str, calls: list, time_limit_s: float = TIME_LIMIT_S, wall_limit_s: float | None = None
) -> tuple[str, object]:
    """Run ``source`` in a contained child process, then call ``name(*args)`` for each ``(name, args)``.
    Returns ("ok", [results]), ("timeout", message) where the code met a limit, ("busy", message) where the
    server was too busy to run it in time (not the code's fault), or ("error", message). ``time_limit_s`` is
    CPU time, counted from the student's first line (the process's start and the arguments' decoding are not
    in it); ``wall_limit_s`` (default ``wall_limit(time_limit_s)``) is the backstop from the job's start.

    An argument ``("__lookup__", {key: value})`` arrives as a function key -> value; the student's
    namespace holds ``torch`` and ``math``. Arguments and results are plain data: tensors, numbers, strings,
    lists, tuples, dicts (another type comes back as a stand-in named after it).
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    if not (isinstance(time_limit_s, int | float) and time_limit_s > 0):
        raise ValueError(f"time_limit_s must be a number > 0, got {time_limit_s!r}")
    wall = wall_limit(time_limit_s) if wall_limit_s is None else wall_limit_s
    job = {"source": source, "calls": wire.to_wire(list(calls)), "limits": {**LIMITS, "cpu_s": time_limit_s}}
    child = _take()
    prestart()  # the next check's child imports torch while this one runs
    try:
        if not _started(child):
            return "busy", (
                "the server is busy (a fresh process for your code did not start in time): press "
                "**Check my code** again in a moment"
            )
        try:
            child.proc.stdin.write(json.dumps(job).encode())
            child.proc.stdin.close()
        except BrokenPipeError:
            return "error", "the process for your code ended before it started: try again"
        return _collect(child, len(calls), time_limit_s, wall)
    finally:
        _end(child)


def execute(source: str, calls: list) -> tuple[str, object]:
    """In *this* process, uncontained (for tests of trusted reference code): exec ``source``, call each."""
    import torch

    import ptqlab.labkit.child as child

    return child.execute(torch, source, calls)
