"""Each escape a student could try through "Check my code", reproduced against the contained runner
(``ptqlab.labkit.runner``) and shown contained. A check costs a fresh process (~1–3 s here)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch

from ptqlab.labkit import runner, sandbox

SANDBOXED = sandbox.bwrap_works()
needs_bwrap = pytest.mark.skipif(not SANDBOXED, reason="bubblewrap cannot start a sandbox here")
ROOM = 60.0  # a generous wall-clock backstop: these tests run on a loaded machine


def run(source: str, *args, limit: float = 3.0, wall: float = ROOM, name: str = "f"):
    return runner.run_student_code(source, [(name, args)], time_limit_s=limit, wall_limit_s=wall)


def processes_with(text: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


def test_a_pickle_payload_in_the_result_never_runs_in_the_server(tmp_path):
    target = tmp_path / "pwned"
    source = (
        "class Payload:\n"
        f"    def __reduce__(self):\n        return (open, ({str(target)!r}, 'w'))\n"
        "def f():\n    return Payload(), torch.ones(2)\n"
    )
    status, (value,) = run(source)
    assert status == "ok" and type(value[0]).__name__ == "Payload" and torch.equal(value[1], torch.ones(2))
    assert not target.exists()
    assert "pickle" not in Path(runner.__file__).read_text().replace("unpickle", "")


def test_detached_children_and_grandchildren_do_not_survive_the_verdict():
    source = (
        "import os, subprocess\n"
        "def f(loop):\n"
        "    subprocess.Popen(['sleep', '301.25'], start_new_session=True)\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            os.execve('/bin/sleep', ['sleep', '302.75'], {})\n"
        "        os._exit(0)\n"
        "    while loop:\n        pass\n"
        "    return 1\n"
    )
    for loop in (False, True):
        status, _ = run(source, loop, limit=1.0)
        assert status == ("timeout" if loop else "ok")
        time.sleep(0.2)
        assert processes_with("301.25") == [] and processes_with("302.75") == []


def test_a_30_gb_allocation_is_refused():
    status, message = run("def f():\n    return torch.empty(30 * 2**30 // 4).sum()\n")
    assert status == "error" and "memory" in message, message
    status, message = run("def f():\n    return len(bytearray(30 * 2**30))\n")
    assert status == "error" and "MemoryError" in message, message


def test_a_100_mb_print_goes_nowhere():
    started = time.monotonic()
    status, value = run("def f():\n    print('x' * 100_000_000)\n    return 7\n")
    assert (status, value) == ("ok", [7]) and time.monotonic() - started < ROOM


def test_a_fork_bomb_is_bounded_and_leaves_nothing():
    """Bounded by RLIMIT_NPROC where the kernel applies it (not to root-mapped processes: a server running
    as root under bubblewrap), and in any case by the deadline, after which no process is left."""
    started = time.monotonic()
    status, message = run("import os\ndef f():\n    while True:\n        os.fork()\n", limit=1.0, wall=10.0)
    assert status in ("error", "timeout") and "busy" not in message, message
    assert time.monotonic() - started < 10.0 + 30.0  # the backstop, then tearing down the processes
    mine = set(sandbox.descendants(os.getpid()))
    assert len(mine & set(processes_with("labkit/child.py"))) <= 3  # the idle child (bwrap, its init, python)


def test_a_large_file_write_is_cut_at_the_file_size_limit():
    status, message = run("def f():\n    open('big', 'wb').write(b'x' * 50_000_000)\n")
    assert status == "error" and "File too large" in message, message


@needs_bwrap
def test_nothing_outside_the_scratch_directory_can_be_written(tmp_path):
    inside = tmp_path / "escape"
    status, message = run(f"def f():\n    open({str(inside)!r}, 'w').write('x')\n")
    assert not inside.exists()  # /tmp is an empty tmpfs in the sandbox
    status, message = run(f"def f():\n    open({str(Path(runner.__file__).parent / 'x')!r}, 'w')\n")
    assert status == "error" and "Read-only file system" in message, message


@needs_bwrap
def test_the_server_process_is_invisible_and_unkillable():
    me = os.getpid()
    status, message = run("def f(pid):\n    return open(f'/proc/{pid}/cmdline').read()\n", me)
    assert status == "error" and "FileNotFoundError" in message, message
    status, message = run("import os, signal\ndef f(pid):\n    os.kill(pid, signal.SIGKILL)\n", me)
    assert status == "error" and "ProcessLookupError" in message, message


@needs_bwrap
def test_no_network_and_no_inherited_environment():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        status, message = run(
            f"import socket\ndef f():\n    socket.create_connection(('127.0.0.1', {port}), 2)\n"
        )
    assert status == "error" and ("refused" in message or "unreachable" in message), message
    status, (env,) = run("import os\ndef f():\n    return dict(os.environ)\n")
    assert set(env) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "OMP_NUM_THREADS",
        "OMP_WAIT_POLICY",
        "PTQLAB_CHECK",
        "PWD",
    }


@pytest.mark.parametrize(
    "body,expected",
    [
        ("raise SystemExit(3)", "SystemExit: 3 (your code tried to stop the process"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt:  (your code tried to stop the process"),
        ("import os; os._exit(3)", "ended the process that ran it (exit status 3"),
    ],
)
def test_leaving_the_process_gets_a_clear_verdict(body, expected):
    status, message = run(f"def f():\n    {body}\n")
    assert status == "error" and expected in message, message


def test_a_reply_header_then_sleep_is_stopped_at_the_backstop():
    source = (
        "import os, stat, time\n"
        "def f():\n"
        "    for fd in range(3, 30):\n"
        "        try:\n"
        "            if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
        "                os.write(fd, b'99999\\n[\"ok\"')\n"
        "        except OSError:\n"
        "            pass\n"
        "    time.sleep(300)\n"
    )
    started = time.monotonic()
    status, message = run(source, wall=4.0)
    assert status == "timeout" and "waited" in message, message
    assert time.monotonic() - started < 4.0 + 5.0


def test_an_endless_loop_meets_the_cpu_limit_and_a_busy_server_is_not_the_students_fault():
    status, message = run("def f():\n    while True:\n        pass\n", limit=0.5)
    assert status == "timeout" and "CPU time limit" in message
    busy = runner.overrun_verdict(cpu=0.4, waited=10.0, wall=12.0, limit=3.0)[1]
    asleep = runner.overrun_verdict(cpu=0.01, waited=0.01, wall=12.0, limit=3.0)[1]
    assert "server is busy" in busy and "not your code's fault" in busy and "waited (sleep" in asleep


def test_a_correct_answer_needing_2_9_s_of_cpu_passes_the_3_s_limit():
    source = (
        "import time\n"
        "def f(x):\n"
        "    t0 = time.process_time()\n"
        "    while time.process_time() - t0 < 2.9:\n"
        "        pass\n"
        "    return x * 2\n"
    )
    status, value = run(source, torch.arange(3), limit=3.0)
    assert status == "ok" and torch.equal(value[0], torch.arange(3) * 2)


def test_plain_data_crosses_both_ways_exactly():
    values = (
        torch.tensor([1.5, -0.0, float("nan")]),
        torch.tensor([[1, 2]], dtype=torch.int8),
        torch.tensor([0.1], dtype=torch.bfloat16),
        3,
        2.5,
        "s",
        None,
        {"a": [1, (2, 3)]},
    )
    status, (back,) = run("def f(*v):\n    return v\n", *values)
    assert status == "ok" and type(back) is tuple and back[3:] == values[3:]
    for a, b in zip(values[:3], back[:3], strict=True):
        assert a.dtype == b.dtype and torch.equal(a.nan_to_num(7), b.nan_to_num(7))
    status, (got,) = run("def f(g):\n    return g('b')\n", ("__lookup__", {"b": 0.25}))
    assert (status, got) == ("ok", 0.25)


def test_the_runner_says_which_protection_applies():
    sentence = runner.protection()
    assert ("bubblewrap" in sentence) == SANDBOXED and "CPU time" in sentence
