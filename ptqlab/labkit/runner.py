"""The code runner: a student's source runs in a child process with a time limit, and what it returns comes back."""

from __future__ import annotations

import math
import multiprocessing
import pickle
import traceback
from multiprocessing import forkserver

import torch

TIME_LIMIT_S = 3.0  # for the student's code


def _lookup(table: dict):
    def accuracy_with_only(name):
        if name not in table:
            raise KeyError(f"no layer named {name!r}")
        return table[name]

    return accuracy_with_only


def _argument(a):
    return _lookup(a[1]) if isinstance(a, tuple) and len(a) == 2 and a[0] == "__lookup__" else a


def _where(exc: BaseException) -> str:
    """The exception and the line of the student's code it came from."""
    if isinstance(exc, SyntaxError) and exc.filename == "<your code>":
        return f"line {exc.lineno}: SyntaxError: {exc.msg}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<your code>"]
    return (f"line {frames[-1].lineno}: " if frames else "") + f"{type(exc).__name__}: {exc}"


def execute(source: str, calls: list) -> tuple[str, object]:
    """In *this* process: exec ``source`` in a fresh namespace, then call each ``(name, args)``."""
    namespace = {"__name__": "exercise", "torch": torch, "math": math}
    try:
        exec(compile(source, "<your code>", "exec"), namespace)
        results = []
        for name, args in calls:
            if not callable(namespace.get(name)):
                raise NameError(f"define a function named {name}")
            results.append(namespace[name](*[_argument(a) for a in args]))
        return "ok", results
    except Exception as exc:
        return "error", _where(exc)


def _child(conn, job: bytes) -> None:
    # plain pickle both ways: multiprocessing's own pickler would pass tensors as shared-memory handles
    torch.set_num_threads(1)
    reply = execute(*pickle.loads(job))
    try:
        data = pickle.dumps(reply)
    except Exception as exc:
        data = pickle.dumps(("error", f"your function returned something that cannot be sent back ({exc})"))
    conn.send_bytes(data)


def _context():
    """A fork server that has imported torch and ptqlab once: each check forks a clean copy of it (ms), so
    one student's code cannot leave state behind for the next, and nothing forks the threaded server."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "ptqlab.labkit.runner"])
    forkserver.ensure_running()
    return ctx


def run_student_code(source: str, calls: list, time_limit_s: float = TIME_LIMIT_S) -> tuple[str, object]:
    """Run ``source`` in a child process, then call ``name(*args)`` for each ``(name, args)`` in ``calls``.
    Returns ("ok", [results]), ("timeout", message) or ("error", message); the child is killed at the limit.

    An argument ``("__lookup__", {key: value})`` arrives as a function key -> value.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    if not (isinstance(time_limit_s, int | float) and time_limit_s > 0):
        raise ValueError(f"time_limit_s must be a number > 0, got {time_limit_s!r}")
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, pickle.dumps((source, calls))), daemon=True)
    proc.start()
    sender.close()
    try:
        if not receiver.poll(time_limit_s):
            return (
                "timeout",
                f"your code ran past the {time_limit_s:g} s time limit (an endless loop?) and was stopped",
            )
        return pickle.loads(receiver.recv_bytes())
    except EOFError:
        return "error", f"the process running your code died (exit code {proc.exitcode})"
    finally:
        receiver.close()
        if proc.is_alive():
            proc.kill()
        proc.join()
