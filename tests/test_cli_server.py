"""``ptqlab labs`` serves a real lab: the access token is required, SIGTERM leaves no marimo child behind,
bad ports are one line. The websocket is probed with a raw HTTP upgrade (what a foreign web page sends)."""

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from browser_support import ROOT, SERVER_START_S, base_env, free_port

from ptqlab.cli import main as cli


def _ptqlab(*args, **kwargs) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ptqlab.cli.main", *args]
    return subprocess.run(cmd, cwd=ROOT, env=base_env(), capture_output=True, text=True, **kwargs)


def _upgrade(port: int, query: str, origin: str) -> str:
    """The status line marimo answers to a websocket handshake on /ws."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(request.encode())
        return s.recv(200).split(b"\r\n")[0].decode()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    return bool(stat.strip()) and not stat.strip().startswith("Z")


def test_served_lab_needs_the_token_and_sigterm_leaves_no_child(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        cmd = [sys.executable, "-m", "ptqlab.cli.main", "labs", "01", "--headless", "--port", str(port)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=base_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        token, deadline = None, time.monotonic() + SERVER_START_S
        while True:
            assert proc.poll() is None, log.read_text()
            token = token or next(iter(re.findall(r"access_token=([\w-]+)", log.read_text())), None)
            if token and _status(f"http://127.0.0.1:{port}/api/status?access_token={token}") != 0:
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        assert f"open http://127.0.0.1:{port}/?access_token={token}" in log.read_text()
        assert _status(f"http://127.0.0.1:{port}/api/status") == 401  # no token: refused
        assert _status(f"http://127.0.0.1:{port}/api/status?access_token=wrong") == 401
        evil = "http://evil.example"
        assert "403" in _upgrade(port, "session_id=s-evil", evil)  # a foreign page has no token: refused
        assert "101" in _upgrade(port, f"session_id=s-ok&access_token={token}", f"http://127.0.0.1:{port}")
        children = _children(proc.pid)
        assert children, "ptqlab should run marimo as its child"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(c) for c in children), "marimo outlived ptqlab"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


@pytest.mark.parametrize("port", ["99999", "0", "-1", "abc"])
def test_bad_port_is_one_line(port):
    r = _ptqlab("labs", "01", "--headless", "--port", port, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "error: argument --port" in r.stderr.splitlines()[-1]


def test_port_in_use_is_one_line_and_no_url():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _ptqlab("labs", "01", "--headless", "--port", str(port), timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and f"cannot serve on 127.0.0.1:{port}" in r.stderr
    assert "http://" not in r.stdout + r.stderr


def test_token_options_in_the_marimo_command():
    with_token = cli.serve_labs_command("affine", 4000, headless=True, token="t")
    assert with_token[-4:] == ["--token", "--token-password-file", "-", "--headless"]
    assert "t" not in with_token  # the token goes through stdin, never on the command line (ps)
    assert "--no-token" in cli.serve_labs_command("affine", 4000, headless=True, token=None)
    assert cli.lab_url("0.0.0.0", 2718, "abc") == "http://127.0.0.1:2718/?access_token=abc"
    r = _ptqlab("labs", "--token", "a", "--no-token", timeout=60)
    assert r.returncode == 2 and "exclude each other" in r.stderr
