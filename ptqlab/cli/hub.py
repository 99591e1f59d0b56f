"""``ptqlab hub --users N [--port P] [--host ADDR] [--dir DIR] [--uid-base UID]``: JupyterHub for a room on
one machine. Each student logs in (``student01``…, own random password in ``DIR/students.tsv``, mode 0600,
checked by ``StudentPasswordAuthenticator``) and gets their own single-user Jupyter server (``StudentSpawner``,
the local process spawner) whose home ``DIR/homes/<name>`` (0700) holds their own copy of the labs (copied on
first spawn; edits kept), opened at ``/user/<name>/marimo/`` by marimo-jupyter-extension (marimo's launcher
and token-protected proxy; no per-notebook venv). A root hub whose Python other users can run starts each
server under its own uid (``--uid-base`` + k): no student can read or change another's home or signal their
processes; otherwise every server runs as the hub's user and only the exercise sandbox separates students.
The database and cookie secret persist in ``DIR``: a restarted hub keeps students logged in. ``configure``
serves any ``jupyterhub_config.py`` (``deploy/``). Limits per student: SystemdSpawner, or DockerSpawner /
KubeSpawner (Zero to JupyterHub) for many machines (README, "JupyterHub for a room").
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import os
import pwd
import secrets
import shutil
import socket
import stat
import sys
from pathlib import Path

from ptqlab.cli.main import labs_dir, port_problem, run_forwarding_signals

MAX_USERS = 500
DEFAULT_UID_BASE = 62000
CHP = "configurable-http-proxy"
MARIMO_SETTINGS = "[runtime]\nauto_instantiate = true\n"


def student_names(n: int) -> list[str]:
    """``student01`` … ``studentNN`` (at least two digits)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"users must be an int, got {type(n).__name__}")
    if not 1 <= n <= MAX_USERS:
        raise ValueError(f"users must be in [1, {MAX_USERS}], got {n}")
    width = max(2, len(str(n)))
    return [f"student{k:0{width}d}" for k in range(1, n + 1)]


def read_passwords(path: Path) -> dict[str, str]:
    """``name -> password`` from a ``students.tsv`` (one ``name<TAB>password`` a line)."""
    return dict(line.split("\t") for line in Path(path).read_text().splitlines() if line.strip())


def write_passwords(path: Path, names: list[str]) -> dict[str, str]:
    """Give every name a password (``secrets.token_urlsafe(9)``), keeping those already in ``path``; the
    file is written with mode 0600 (only the teacher reads it)."""
    known = read_passwords(path) if path.exists() else {}
    passwords = {name: known.get(name) or secrets.token_urlsafe(9) for name in names}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"{name}\t{password}\n" for name, password in passwords.items())
    return passwords


def find_proxy() -> str | None:
    """configurable-http-proxy on PATH or next to this Python (``npm install -g --prefix .venv``)."""
    beside = Path(sys.executable).parent / CHP
    return str(beside) if beside.exists() else shutil.which(CHP)


def uid_problem(uid_base: int, n: int) -> str | None:
    """None when the uids ``uid_base+1 … uid_base+n`` belong to no account here, else a one-line reason."""
    if not 1000 <= uid_base <= 2**31 - MAX_USERS - 1:
        return f"--uid-base must be in [1000, {2**31 - MAX_USERS - 1}], got {uid_base}"
    for uid in range(uid_base + 1, uid_base + n + 1):
        with contextlib.suppress(KeyError):
            return (
                f"uid {uid} belongs to the account {pwd.getpwuid(uid).pw_name!r}: choose another --uid-base"
            )
    return None


def unreachable(path: Path) -> Path | None:
    """The first folder on the way to ``path`` that other users cannot enter (no o+x), else None."""
    for folder in [*reversed(Path(path).resolve().parents), Path(path).resolve()]:
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None


def own_uids(state: Path) -> bool:
    """Whether each student's server can run under its own uid: the hub is root and other users can enter
    the hub's folder and run this Python (not so for a Python under a private folder such as /root)."""
    needed = [
        Path(state),
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.executable).resolve(),
        labs_dir(),
    ]
    return os.geteuid() == 0 and all(unreachable(path) is None for path in needed)


def spawner_class():
    """``StudentSpawner``: JupyterHub's local spawner with a home per student holding a copy of the labs,
    run under the student's own uid when the hub is root. (Imports JupyterHub: the ``hub`` extra.)"""
    from jupyterhub.spawner import SimpleLocalProcessSpawner
    from traitlets import Int, Unicode

    class StudentSpawner(SimpleLocalProcessSpawner):
        labs = Unicode(str(labs_dir()), config=True, help="folder whose lab files are copied to each home")
        uid_base = Int(DEFAULT_UID_BASE, config=True, help="student k runs as uid uid_base + k (hub as root)")
        students = Unicode("", config=True, help="students.tsv: the order of names gives the uids")

        def student_uid(self) -> int | None:
            if not own_uids(Path(self.students).parent):
                return None
            names = list(read_passwords(Path(self.students)))
            return self.uid_base + 1 + names.index(self.user.name)

        def prepare_home(self) -> None:
            home, uid = Path(self.home_dir), self.student_uid()
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
            for lab in sorted(Path(self.labs).glob("[0-9]*.py")):
                if not (home / lab.name).exists():  # a student's own edits are kept
                    shutil.copyfile(lab, home / lab.name)
            settings = home / ".config" / "marimo" / "marimo.toml"
            if not settings.exists():  # marimo edit runs a notebook on opening only when told to
                settings.parent.mkdir(parents=True, exist_ok=True)
                settings.write_text(MARIMO_SETTINGS)
            for path in [home, *home.glob("[0-9]*.py"), home / ".config", settings.parent, settings]:
                if uid is not None:
                    os.chown(path, uid, uid)
            home.chmod(0o700)

        async def start(self):
            self.prepare_home()
            return await super().start()

        def make_preexec_fn(self, name):
            home, uid = self.home_dir, self.student_uid()

            def preexec():  # runs in the forked child, before exec: no logging here
                if uid is not None:
                    os.setgroups([])
                    os.setgid(uid)
                    os.setuid(uid)
                os.umask(0o077)
                os.chdir(home)

            return preexec

    return StudentSpawner


def authenticator_class():
    """``StudentPasswordAuthenticator``: each student's own password, read from ``students.tsv``."""
    from jupyterhub.auth import Authenticator
    from traitlets import Unicode

    class StudentPasswordAuthenticator(Authenticator):
        students = Unicode("", config=True, help="students.tsv: name<TAB>password a line")

        async def authenticate(self, handler, data):
            expected = read_passwords(Path(self.students)).get(data.get("username", ""))
            given = data.get("password", "")
            if expected and hmac.compare_digest(expected.encode(), given.encode()):
                return data["username"]
            return None

    return StudentPasswordAuthenticator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configure(
    c,
    *,
    state: str,
    users: int,
    port: int = 8000,
    host: str = "127.0.0.1",
    uid_base: int = DEFAULT_UID_BASE,
    hub_port: int | None = None,
    proxy_api_port: int | None = None,
) -> None:
    """Fill a JupyterHub config ``c`` for a room of ``users`` students whose state (passwords, homes, the
    hub's database and cookie secret) lives in the folder ``state``."""
    names = student_names(users)
    state_dir = Path(state).resolve()
    students = state_dir / "students.tsv"
    if set(read_passwords(students)) != set(names):
        raise ValueError(f"{students} does not list exactly {names[0]} … {names[-1]}: run `ptqlab hub` once")
    bin_dir = Path(sys.executable).parent
    c.JupyterHub.ip, c.JupyterHub.port, c.JupyterHub.hub_ip = host, port, "127.0.0.1"
    c.JupyterHub.hub_port = hub_port or _free_port()
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{proxy_api_port or _free_port()}"
    c.ConfigurableHTTPProxy.command = [find_proxy() or CHP]
    c.ConfigurableHTTPProxy.pid_file = str(state_dir / "proxy.pid")
    c.JupyterHub.db_url = f"sqlite:///{state_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state_dir / "jupyterhub.pid")
    c.JupyterHub.authenticator_class = authenticator_class()
    c.StudentPasswordAuthenticator.students = str(students)
    c.Authenticator.allowed_users = set(names)
    c.JupyterHub.spawner_class = spawner_class()
    c.StudentSpawner.students = str(students)
    c.StudentSpawner.uid_base = uid_base
    c.StudentSpawner.home_dir_template = str(state_dir / "homes" / "{username}")
    c.Spawner.cmd = [str(bin_dir / "jupyterhub-singleuser")]
    c.Spawner.args = [
        "--ServerApp.allow_root=True",  # a root hub whose Python other users cannot run: students run as root
        f"--MarimoProxyConfig.marimo_path={bin_dir / 'marimo'}",
        "--MarimoProxyConfig.no_sandbox=True",  # no per-notebook venv: the labs run on this Python
        "--MarimoProxyConfig.skip_update_check=True",
        "--MarimoProxyConfig.timeout=180",
    ]
    c.Spawner.environment = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "OMP_WAIT_POLICY": "PASSIVE",
        "MPLBACKEND": "Agg",
    }
    c.Spawner.default_url = "/marimo/"
    c.Spawner.start_timeout = c.Spawner.http_timeout = 180
    c.JupyterHub.cleanup_servers = True


CONFIG = """\
# Written by `ptqlab hub`; JupyterHub runs it. Edit `ptqlab hub`'s options rather than this file.
from ptqlab.cli.hub import configure
configure(c, state={state!r}, users={users}, port={port}, host={host!r}, uid_base={uid_base})
"""


def prepare(state: Path, users: int, port: int, host: str, uid_base: int) -> tuple[Path, dict[str, str]]:
    """Create ``state`` (passwords, homes folder, config); return (the config's path, the passwords)."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "homes").mkdir(exist_ok=True)
    for folder in (state, state / "homes"):  # students' servers must enter these to reach their home
        folder.chmod(0o755)
    passwords = write_passwords(state / "students.tsv", student_names(users))
    config = state / "jupyterhub_config.py"
    config.write_text(CONFIG.format(state=str(state), users=users, port=port, host=host, uid_base=uid_base))
    return config, passwords


def hub_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "jupyterhub", "-f", str(config)]


def problems(state: Path, users: int, host: str, port: int, uid_base: int) -> str | None:
    """A one-line reason why the hub cannot start here, or None."""
    try:
        import jupyterhub  # noqa: F401
        import marimo_jupyter_extension  # noqa: F401
    except ImportError as error:
        return f"ptqlab hub needs the hub extra ({error.name} is missing): pip install -e '.[hub]'"
    if find_proxy() is None:
        return f"ptqlab hub needs {CHP} (npm install -g {CHP}@5.3.0)"
    if os.geteuid() == 0 and (problem := uid_problem(uid_base, users)):
        return problem
    return port_problem(host, port)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ptqlab hub", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, required=True, help=f"number of students, 1 to {MAX_USERS}")
    parser.add_argument("--port", type=int, default=8000, help="the hub's port (default 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for a room)")
    parser.add_argument("--dir", default="ptqlab-hub", help="the hub's folder (default ./ptqlab-hub)")
    parser.add_argument(
        "--uid-base", type=int, default=DEFAULT_UID_BASE, help="students' uids start above it"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.users <= MAX_USERS or not 1 <= args.port <= 65535:
        parser.error(
            f"need --users in [1, {MAX_USERS}] and --port in [1, 65535], got {args.users}, {args.port}"
        )
    state = Path(args.dir).resolve()
    if problem := problems(state, args.users, args.host, args.port, args.uid_base):
        print(problem, file=sys.stderr)
        return 1
    config, _ = prepare(state, args.users, args.port, args.host, args.uid_base)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    isolation = (
        f"each student's server runs as uid {args.uid_base + 1}…{args.uid_base + args.users}"
        if own_uids(state)
        else "every student's server runs as you (as root, with a Python other users can run, each student "
        "gets their own uid)"
    )
    print(
        f"ptqlab hub: open http://{shown}:{args.port}/ — {args.users} students, passwords in "
        f"{state / 'students.tsv'}; {isolation}",
        flush=True,
    )
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return run_forwarding_signals(hub_command(config), env)
