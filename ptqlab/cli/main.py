"""The ``ptqlab`` command: open the labs in the browser, or run a benchmark.

ptqlab                       serve every lab (a gallery) with ``marimo run`` on 127.0.0.1 and open it
ptqlab labs [--port N] [--host ADDR] [--token T | --no-token] [--headless] [LAB]
ptqlab bench NAME [...]      run a benchmark and print its table (``ptqlab bench --list``)
ptqlab hub --users N [...]   JupyterHub for a room: one server per student (``ptqlab hub --help``)

The lab server needs marimo's access token (a fresh random one unless ``--token`` names one): the URL
printed carries it, and a request or websocket without it is refused, so another web page the user
visits cannot drive the labs. SIGINT/SIGTERM to ``ptqlab`` are passed on to marimo; ``ptqlab`` exits
with it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import secrets
import signal
import socket
import subprocess
import sys
from importlib import resources
from pathlib import Path

# name -> ("module:function", one-line help). Each function takes the remaining argv and returns an exit code.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "observers": (
        "ptqlab.cli.bench:observers",
        "observe() and range() per observer vs torch.ao (1M floats)",
    ),
    "accuracy": (
        "ptqlab.cli.bench:accuracy",
        "accuracy / embedding cosine of the real models under simulated PTQ",
    ),
    "algorithms": ("ptqlab.cli.bench_algorithms:main", "PTQ algorithms vs QAT; LAWA and LR cooldown"),
    "widgets": (
        "ptqlab.cli.bench_widgets:main",
        "ClippingExplorer on 10M floats: construction and per-drag time",
    ),
    "llm": ("ptqlab.cli.bench_llm:main", "SmolLM2-135M: PPL, KL, top-1 per scheme (RTN/GPTQ/AWQ/SQ/GGUF)"),
    "labs": ("ptqlab.cli.bench_labs:main", "labs 01/02/03/05/06/09: ms from slider to figure, in Chromium"),
    "architectures": (
        "ptqlab.cli.bench_architectures:main",
        "the seed's architecture table (ResNet/MobileNetV2/ViT-style on digits, MiniLM) measured here",
    ),
    "classroom": (
        "ptqlab.cli.bench_classroom:main",
        "one lab server, N students at once in Chromium: latency, memory, CPU, drops",
    ),
    "models": (
        "ptqlab.cli.bench_models:main",
        "every PTQ recipe on digits MLP/CNN, MiniLM, a memory-bound MLP: speed, size, quality",
    ),
}


def labs_dir() -> Path:
    """The folder of marimo labs: ``labs/`` of a checkout (editable install), else the copy that a
    wheel ships as the package data ``ptqlab/labs/``."""
    checkout = Path(__file__).resolve().parents[2] / "labs"
    if (checkout / "01_affine_map.py").is_file():
        return checkout
    installed = Path(str(resources.files("ptqlab") / "labs"))
    if (installed / "01_affine_map.py").is_file():
        return installed
    raise FileNotFoundError("could not find the labs: reinstall ptqlab (`pip install .` ships them)")


def serve_labs_command(
    lab: str | None, port: int, headless: bool, *, host: str = "127.0.0.1", token: str | None = None
) -> list[str]:
    """``marimo run`` for one lab or the gallery, through ``ptqlab.cli.serve`` (which imports torch and the
    labs' modules before marimo serves); ``token`` None means no token (``--no-token``)."""
    target = labs_dir() if lab is None else _find_lab(lab)
    cmd = [sys.executable, "-m", "ptqlab.cli.serve", "run", str(target), "--host", host, "--port", str(port)]
    cmd += ["--no-token"] if token is None else ["--token", "--token-password-file", "-"]
    if headless:
        cmd.append("--headless")
    return cmd


def lab_url(host: str, port: int, token: str | None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/" + ("" if token is None else f"?access_token={token}")


def port_problem(host: str, port: int) -> str | None:
    """None when ``port`` can be bound on ``host`` now, else a one-line reason."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as marimo's server binds: a port
            s.bind((host, port))  # left in TIME_WAIT by the last stop is free to restart on at once
    except OSError as e:
        return f"cannot serve on {host}:{port}: {e.strerror or e} (is another server using it? try --port)"
    return None


def run_forwarding_signals(cmd: list[str], env: dict, stdin_text: str | None = None) -> int:
    """Run ``cmd``, pass SIGINT/SIGTERM on to it, and return its exit code once it has exited."""
    child = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE if stdin_text is not None else None)
    if stdin_text is not None:
        child.stdin.write(stdin_text.encode())
        child.stdin.close()

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # pragma: no cover - the handler above replaces it
                forward(signal.SIGINT, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _find_lab(lab: str) -> Path:
    candidates = sorted(p for p in labs_dir().glob("*.py") if lab in p.stem)
    if not candidates:
        names = ", ".join(p.stem for p in sorted(labs_dir().glob("[0-9]*.py")))
        raise SystemExit(f"no lab matches {lab!r}; labs: {names}")
    return candidates[0]


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number in [1, 65535], got {port}")
    return port


def _labs(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ptqlab labs", description="Serve the labs with marimo.")
    parser.add_argument("lab", nargs="?", help="part of a lab's file name (default: all labs, as a gallery)")
    parser.add_argument("--port", type=_port, default=2718)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface, for a room)"
    )
    parser.add_argument("--token", help="access token to require (default: a fresh random one)")
    parser.add_argument(
        "--no-token", action="store_true", help="no access token: any local web page can drive the labs"
    )
    parser.add_argument("--headless", action="store_true", help="do not open a browser")
    args = parser.parse_args(argv)
    if args.no_token and args.token:
        parser.error("--token and --no-token exclude each other")
    token = None if args.no_token else (args.token or secrets.token_urlsafe(18))
    cmd = serve_labs_command(args.lab, args.port, args.headless, host=args.host, token=token)
    problem = port_problem(args.host, args.port)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    print(f"ptqlab labs: open {lab_url(args.host, args.port, token)}", flush=True)
    return run_forwarding_signals(cmd, env, stdin_text=None if token is None else token + "\n")


def _bench(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "--list"}:
        print("usage: ptqlab bench NAME [options]\n\nbenchmarks:")
        for name, (_, text) in sorted(BENCHMARKS.items()):
            print(f"  {name:<12} {text}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}; choose from: {', '.join(sorted(BENCHMARKS))}", file=sys.stderr)
        return 2
    module, func = BENCHMARKS[name][0].split(":")
    previous = signal.signal(signal.SIGINT, _interrupt(name))
    try:
        return int(getattr(importlib.import_module(module), func)(rest) or 0)
    except KeyboardInterrupt:
        print(f"\nptqlab bench {name}: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as error:
        if not isinstance(error, MemoryError) and "allocate" not in str(error):
            raise
        print(f"ptqlab bench {name}: out of memory ({str(error).splitlines()[0]})", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt(name: str):
    """SIGINT handler for a benchmark: the first Ctrl-C raises KeyboardInterrupt (one line, exit 130);
    a second one, when the first was swallowed somewhere (a library's ``except``), exits at once."""
    pressed = []

    def handler(_signum, _frame):
        if pressed:
            print(f"\nptqlab bench {name}: interrupted", file=sys.stderr, flush=True)
            os._exit(130)
        pressed.append(True)
        raise KeyboardInterrupt

    return handler


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _labs([])
    command, rest = argv[0], argv[1:]
    if command == "labs":
        return _labs(rest)
    if command == "bench":
        return _bench(rest)
    if command == "hub":  # by name: ptqlab.cli.hub imports this module's helpers
        return int(importlib.import_module("ptqlab.cli.hub").main(rest) or 0)
    if command in {"-h", "--help"}:
        print(__doc__)
        return 0
    if command.startswith("-"):  # `ptqlab --headless` is `ptqlab labs --headless`
        return _labs(argv)
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
