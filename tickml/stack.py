"""The production stack: one definition of its services, commands and environment, run by supervisord.

`services(place)` is that definition. `tickml stack up` (`make stack`) renders it for this machine's loopback
and runs it under supervisord (supervision, restart on failure, logs); `docker-compose.yml` is the same
definition for containers, which `tests/test_compose.py` checks. Each program supervisord starts is
`tickml stack run NAME`: it waits for the services NAME depends on to be healthy, stops what a killed
predecessor of NAME left behind, then runs NAME's command and stops it, with everything it started, when
supervisord stops it or dies. Nothing secret is written to a file: supervisord inherits the password from
`tickml stack up`'s environment and hands it to its programs the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent  # the project: workspace.yaml, deploy/
STACK_ENV = "TICKML_STACK"  # set in every stack process: how leftovers of a stack are found
PASSWORD_ENV, PASSWORD_FILE_ENV = "TICKML_PG_PASSWORD", "TICKML_PG_PASSWORD_FILE"
DEFAULT_PASSWORD_FILE = Path("~/.config/tickml/pg-password")
DEFAULT_PORTS = {"postgres": 5433, "mlflow": 5000, "dagster-webserver": 3000, "scoring": 3001}
GRACE_S = 4.0  # a program's SIGTERM-to-SIGKILL grace: the whole stack stops within 10 s
DEPENDENCY_TIMEOUT_S = 300.0
DATABASES = ("tickml", "dagster", "mlflow")
PG_USER = "tickml"


@dataclass(frozen=True)
class Place:
    """Where the stack runs: the address listeners bind, how each service is reached, and its folders."""

    bind: str
    hosts: dict[str, str]
    ports: dict[str, int]
    tickml_home: str
    dagster_home: str
    artifacts: str
    workspace: str

    def url(self, name: str) -> str:
        return f"http://{self.hosts[name]}:{self.ports[name]}"

    def pg_url(self, database: str, password: str, driver: str = "postgresql") -> str:
        return f"{driver}://{PG_USER}:{password}@{self.hosts['postgres']}:{self.ports['postgres']}/{database}"


# docker-compose.yml's side: every container listens on its interfaces, reached by its service name
COMPOSE = Place(
    bind="0.0.0.0",
    hosts={n: n for n in ("postgres", "mlflow", "dagster-webserver", "scoring")},
    ports={"postgres": 5432, "mlflow": 5000, "dagster-webserver": 3000, "scoring": 3001},
    tickml_home="/data/tickml",
    dagster_home="/opt/dagster/home",
    artifacts="/data/mlartifacts",
    workspace="workspace.yaml",
)


@dataclass(frozen=True)
class Service:
    """One process of the stack. `health` is how it is known to be up: "postgres" (a login succeeds),
    "http:/path" (200 on that path of its port), "daemon" (Dagster daemon heartbeats) or "running"."""

    name: str
    command: list[str]
    depends_on: tuple[str, ...] = ()
    health: str = "running"
    stop_signal: str = "SIGTERM"
    # what a killed predecessor left (a worker still holding the port) is stopped before a restart; not
    # for the daemon, whose runs carry on and finish on their own
    reap: bool = True
    once: bool = False  # a job that ends (the feed): restarted only when it fails


def services(
    place: Place, *, postgres: list[str] | None = None, feed: list[str] | None = None
) -> list[Service]:
    """The stack, in start-up order. `postgres` is the server's command (None: the container image's own);
    `feed` the `tickml feed` options of a simulated feed (None: no feed)."""
    stack = [
        Service(
            "mlflow",
            ["mlflow", "server", "--host", place.bind, "--port", str(place.ports["mlflow"])]
            + ["--serve-artifacts", "--artifacts-destination", place.artifacts, "--workers", "1"]
            + ["--allowed-hosts", allowed_hosts(place)],
            ("postgres",),
            "http:/health",
        ),
        Service(
            "dagster-webserver",
            ["dagster-webserver", "-h", place.bind, "-p", str(place.ports["dagster-webserver"])]
            + ["-w", place.workspace],
            ("postgres", "mlflow"),
            "http:/server_info",
        ),
        Service(
            "dagster-daemon",
            ["dagster-daemon", "run", "-w", place.workspace],
            ("postgres", "mlflow"),
            "daemon",
            reap=False,
        ),
        Service(
            "scoring",
            ["tickml", "serve", "--host", place.bind, "--port", str(place.ports["scoring"])],
            ("postgres", "mlflow"),
            "http:/livez",
        ),
        Service("stream", ["tickml", "stream", "--url", place.url("scoring")], ("postgres", "scoring")),
    ]
    if feed is not None:
        stack.append(Service("feed", ["tickml", "feed", *feed], ("postgres",), once=True))
    return [Service("postgres", postgres or [], health="postgres", stop_signal="SIGINT"), *stack]


def allowed_hosts(place: Place) -> str:
    """The Host headers MLflow answers (its DNS-rebinding guard): its own name and loopback, on its port."""
    port = place.ports["mlflow"]
    names = dict.fromkeys([place.hosts["mlflow"], "localhost", "127.0.0.1"])
    return ",".join(f"{n}:{port}" for n in names)


def environment(place: Place, password: str) -> dict[str, str]:
    """The environment of every tickml, Dagster and MLflow process of the stack (secrets included)."""
    return {
        "TICKML_PG_URL": place.pg_url("tickml", password),
        # dagster-postgres binds a NOTIFY argument, which only psycopg2's client-side binding accepts
        # (SQLAlchemy 2.1 picks psycopg 3 for a bare postgresql:// URL)
        "DAGSTER_PG_URL": place.pg_url("dagster", password, "postgresql+psycopg2"),
        "MLFLOW_BACKEND_STORE_URI": place.pg_url("mlflow", password, "postgresql+psycopg"),
        "MLFLOW_TRACKING_URI": place.url("mlflow"),
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        "TICKML_HOME": place.tickml_home,
        "TICKML_SERVICE_URL": place.url("scoring"),
        "DAGSTER_HOME": place.dagster_home,
        # MLflow's job runner (seven worker processes) serves GenAI features tickml does not use
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }


# ---------------------------------------------------------------------------------------------- this machine


@dataclass
class StackConfig:
    """A stack on this machine, kept as `stack.json` in its folder (no secrets in it)."""

    dir: str
    bind: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    feed: list[str] | None = None
    hold: list[str] = field(default_factory=list)  # defined, not started until `tickml stack start NAME`

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def place(self) -> Place:
        return Place(
            bind=self.bind,
            hosts={n: "127.0.0.1" if self.bind in ("0.0.0.0", "::") else self.bind for n in DEFAULT_PORTS},
            ports=self.ports,
            tickml_home=str(self.path / "home"),
            dagster_home=str(self.path / "dagster_home"),
            artifacts=str(self.path / "mlartifacts"),
            workspace=str(ROOT / "workspace.yaml"),
        )

    @property
    def socket(self) -> Path:
        return self.path / "supervisor.sock"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def services(self) -> list[Service]:
        pg = self.path / "pgdata"
        postgres = [str(postgres_binaries() / "postgres"), "-D", str(pg), "-p", str(self.ports["postgres"])]
        postgres += ["-c", f"listen_addresses={self.bind}", "-k", str(self.path / "run")]
        stack = services(self.place, postgres=postgres, feed=self.feed)
        bin_dir = Path(sys.executable).parent  # the stack runs this install's commands
        return [s if s.name == "postgres" else _in(bin_dir, s) for s in stack]

    def save(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "stack.json").write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> StackConfig:
        path = Path(directory) / "stack.json"
        if not path.exists():
            raise FileNotFoundError(f"no stack in {directory} (`tickml stack up` creates it)")
        return cls(**json.loads(path.read_text()))


def _in(bin_dir: Path, service: Service) -> Service:
    return replace(service, command=[str(bin_dir / service.command[0]), *service.command[1:]])


def default_dir() -> Path:
    """$TICKML_STACK_DIR, or `stack/` under $TICKML_HOME (the project's .tickml/ by default)."""
    if os.environ.get("TICKML_STACK_DIR"):
        return Path(os.environ["TICKML_STACK_DIR"]).resolve()
    from feature_store.store import default_home

    return Path(default_home()).resolve() / "stack"


def postgres_binaries() -> Path:
    """The folder of PostgreSQL's server binaries: the system's (on PATH, or Debian's newest), else the
    `pgserver` wheel's own."""
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if debian:
        return debian[-1].parent
    try:
        import pgserver
    except ImportError as exc:
        raise RuntimeError(
            "no PostgreSQL server found: install one (apt-get install postgresql) or `pip install pgserver`"
        ) from exc
    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def pg_system_user() -> str | None:
    """The system user PostgreSQL runs as: None (this user) unless root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "pgserver"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "pgserver"], check=True, capture_output=True)
    return "pgserver"


def password() -> str:
    """The stack's PostgreSQL password: $TICKML_PG_PASSWORD, else the file $TICKML_PG_PASSWORD_FILE
    (default ~/.config/tickml/pg-password, outside any repository), created with a random one if missing."""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    path = Path(os.environ.get(PASSWORD_FILE_ENV) or DEFAULT_PASSWORD_FILE).expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def _traversable(path: Path) -> None:
    """Let another user (PostgreSQL's) reach `path`: o+x on each parent that lacks it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)


def init_postgres(config: StackConfig, secret: str) -> bool:
    """Create the stack's PostgreSQL cluster and its databases unless they exist; True when created.

    Password logins only (scram-sha-256), no trust; the databases are created in single-user mode, so no
    server is started for it.
    """
    pgdata = config.path / "pgdata"
    if (pgdata / "PG_VERSION").exists():
        return False
    binaries, user = postgres_binaries(), pg_system_user()
    shutil.rmtree(pgdata, ignore_errors=True)
    pgdata.mkdir(parents=True, mode=0o700)
    (config.path / "run").mkdir(exist_ok=True)
    if user:
        _traversable(config.path)
        for path in (pgdata, config.path / "run"):
            shutil.chown(path, user, user)
    with tempfile.NamedTemporaryFile("w", dir=config.path, delete=False) as pwfile:
        pwfile.write(secret + "\n")
    try:
        if user:
            shutil.chown(pwfile.name, user)
        subprocess.run(
            [str(binaries / "initdb"), "-D", str(pgdata), "-U", PG_USER, "--pwfile", pwfile.name]
            + ["--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"],
            check=True,
            capture_output=True,
            user=user,
        )
    finally:
        os.unlink(pwfile.name)
    sql = "".join(f"CREATE DATABASE {db};\n" for db in DATABASES if db != "postgres")
    subprocess.run(
        [str(binaries / "postgres"), "--single", "-D", str(pgdata), "postgres"],
        input=sql.encode(),
        check=True,
        capture_output=True,
        user=user,
    )
    return True


def supervisord_conf(config: StackConfig) -> str:
    """supervisord's configuration: a program per service (`tickml stack run NAME`), logs under logs/, its
    control socket in the stack's folder (owner only), no HTTP listener."""
    tickml = Path(sys.executable).with_name("tickml")
    lines = [
        "[unix_http_server]",
        f"file={config.socket}",
        "chmod=0700",
        "[supervisord]",
        f"logfile={config.logs / 'supervisord.log'}",
        f"pidfile={config.path / 'supervisord.pid'}",
        f"directory={ROOT}",
        "logfile_maxbytes=10MB",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "[supervisorctl]",
        f"serverurl=unix://{config.socket}",
    ]
    programs = config.services()
    # everything but PostgreSQL is one group: supervisord stops a group's programs together, and the groups
    # one after another (PostgreSQL last), so the stack stops in the time of its slowest program
    lines += ["[group:tickml]", f"programs={','.join(s.name for s in programs if s.name != 'postgres')}"]
    for priority, service in enumerate(programs, start=1):
        lines += [
            f"[program:{service.name}]",
            f"command={tickml} stack run {service.name} --dir {config.path}",
            f"directory={ROOT}",
            f"priority={priority * 10}",
            f"autostart={'false' if service.name in config.hold else 'true'}",
            f"autorestart={'unexpected' if service.once else 'true'}",
            "exitcodes=0",
            "startsecs=1",
            "startretries=20",
            "stopsignal=TERM",
            f"stopwaitsecs={GRACE_S + 2:.0f}",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={config.logs / (service.name + '.log')}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=3",
        ]
    return "\n".join(lines) + "\n"


def supervisor(config: StackConfig) -> xmlrpc.client.ServerProxy:
    """supervisord's XML-RPC interface over the stack's unix socket."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{config.socket}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def program(name: str) -> str:
    """supervisord's name of a service's program: `tickml:NAME`, except PostgreSQL's group of its own."""
    return name if name == "postgres" else f"tickml:{name}"


def supervisord_pid(config: StackConfig) -> int | None:
    """supervisord's pid when it runs for this stack, else None."""
    try:
        pid = int((config.path / "supervisord.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    with contextlib.suppress(psutil.Error):
        if psutil.Process(pid).is_running() and "supervisord" in " ".join(psutil.Process(pid).cmdline()):
            return pid
    return None


def running_environment(config: StackConfig) -> dict[str, str]:
    """The environment the running stack was started with (supervisord's), secrets included: what the
    checks of `status` use, whichever shell it is typed in."""
    pid = supervisord_pid(config)
    if pid is None:
        raise RuntimeError(f"no stack running in {config.path}")
    return psutil.Process(pid).environ()


def healthy(
    service: Service, config: StackConfig, env: dict[str, str], since: float | None = None
) -> str | None:
    """None when `service` is up, else why not (one check, a few seconds at most). `since` (epoch seconds):
    the daemon must have reported after it, not only within the last minute."""
    try:
        if service.health == "postgres":
            import psycopg

            with psycopg.connect(env["TICKML_PG_URL"], connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return None
        if service.health.startswith("http:"):
            url = (
                f"http://{config.place.hosts[service.name]}:{config.ports[service.name]}{service.health[5:]}"
            )
            status = httpx.get(url, timeout=3.0).status_code
            return None if status == 200 else f"{url} answered {status}"
        if service.health == "daemon":
            return _daemon_health(env, since)
        info = supervisor(config).supervisor.getProcessInfo(program(service.name))
        return None if info["statename"] == "RUNNING" else f"{service.name} is {info['statename']}"
    except Exception as exc:  # noqa: BLE001 - any failure is "not up yet", said in the message
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _daemon_health(env: dict[str, str], since: float | None = None) -> str | None:
    """The daemon's sensor, scheduler and run-queue loops have each reported within the last minute."""
    code = (
        "import sys, time, dagster as dg\n"
        "beats = dg.DagsterInstance.get().get_daemon_heartbeats()\n"
        "need = {'SENSOR', 'SCHEDULER', 'QUEUED_RUN_COORDINATOR'}\n"
        "since = max(time.time() - 60, float(sys.argv[1]))\n"
        "stale = sorted(n for n in need if n not in beats or beats[n].timestamp < since)\n"
        "print(','.join(stale))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(since or 0)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode:
        return result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "daemon check failed"
    stale = result.stdout.strip()
    return f"no recent heartbeat from the daemon's {stale}" if stale else None


def stack_processes(config: StackConfig, name: str | None = None) -> list[psutil.Process]:
    """Processes of this stack (every one has TICKML_STACK=<its folder>), of program `name` if given."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            env = proc.environ()
            if env.get(STACK_ENV) == str(config.path) and (
                name is None or env.get("SUPERVISOR_PROCESS_NAME") == name
            ):
                found.append(proc)
    return found


def kill_processes(procs: list[psutil.Process], grace_s: float) -> list[psutil.Process]:
    """SIGTERM these, SIGKILL what is left after `grace_s`; returns what still runs after that."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _, alive = psutil.wait_procs(alive, timeout=5)
    return alive


def _die_with_parent(signum: int) -> Callable[[], None]:
    """A preexec function: this process gets `signum` when its parent dies (Linux prctl)."""

    def preexec() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signum))  # PR_SET_PDEATHSIG

    return preexec


# ------------------------------------------------------------------------------------------------ commands


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_program(name: str, directory: Path) -> int:
    """supervisord's program NAME: wait for its dependencies, stop its predecessor's leftovers, run it."""
    config = StackConfig.load(directory)
    by_name = {s.name: s for s in config.services()}
    service = by_name[name]
    _die_with_parent(signal.SIGTERM)()  # supervisord gone (even by SIGKILL): stop too
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda s, _f: stopping.append(s))
    signal.signal(signal.SIGINT, lambda s, _f: stopping.append(s))
    env = dict(os.environ)
    deadline = time.monotonic() + DEPENDENCY_TIMEOUT_S
    for dependency in service.depends_on:
        said = ""
        while (why := healthy(by_name[dependency], config, env)) is not None:
            if stopping:
                return 0
            if time.monotonic() > deadline:
                _say(f"tickml stack: {name} gave up waiting for {dependency}: {why}")
                return 3
            if why != said:
                _say(f"tickml stack: {name} waits for {dependency} ({why})")
                said = why
            time.sleep(1.0)
    if service.reap:
        me = psutil.Process()
        mine = {me.pid, *(p.pid for p in me.parents())}
        left = [p for p in stack_processes(config, name) if p.pid not in mine]
        if left:
            _say(f"tickml stack: stopping {len(left)} leftover processes of {name}: {[p.pid for p in left]}")
            kill_processes(left, grace_s=3.0)
    if stopping:
        return 0
    stop_signal = signal.Signals[service.stop_signal]
    child = subprocess.Popen(
        service.command,
        cwd=ROOT,
        user=pg_system_user() if name == "postgres" else None,
        preexec_fn=_die_with_parent(stop_signal),
    )
    _say(f"tickml stack: {name} started (pid {child.pid}): {' '.join(service.command)}")
    tree: list[psutil.Process] = []
    while child.poll() is None and not stopping:
        with contextlib.suppress(psutil.Error):
            tree = psutil.Process(child.pid).children(recursive=True)
        time.sleep(0.2)
    if child.poll() is None:  # asked to stop: the service's own stop signal, then whatever is left
        with contextlib.suppress(psutil.Error):
            tree = psutil.Process(child.pid).children(recursive=True)
        child.send_signal(stop_signal)
        try:
            child.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        kill_processes([p for p in tree if p.is_running()], grace_s=1.0)
        return 0
    code = child.returncode
    _say(f"tickml stack: {name} exited with code {code}")
    kill_processes([p for p in tree if p.is_running()], grace_s=1.0)
    return 0 if code == 0 else 1


def up(config: StackConfig, *, timeout_s: float = 300.0) -> int:
    """Start the stack unless it runs, then wait until every service is healthy, saying so as they come up."""
    if supervisord_pid(config):
        _say(f"the stack in {config.path} is running already; `tickml stack status` shows it")
        return 0
    secret = password()
    config.save()
    config.logs.mkdir(exist_ok=True)
    if init_postgres(config, secret):
        _say(f"created PostgreSQL cluster {config.path / 'pgdata'} with databases {', '.join(DATABASES)}")
    dagster_home = Path(config.place.dagster_home)
    dagster_home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")  # the compose stack's file
    Path(config.place.tickml_home).mkdir(exist_ok=True)
    conf = config.path / "supervisord.conf"
    conf.write_text(supervisord_conf(config))
    env = {**os.environ, **environment(config.place, secret), STACK_ENV: str(config.path)}
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    env.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    supervisord = Path(sys.executable).with_name("supervisord")
    subprocess.run([str(supervisord), "-c", str(conf)], env=env, check=True, cwd=ROOT)
    _say(f"supervisord started for {config.path}; logs in {config.logs}")
    deadline = time.monotonic() + timeout_s
    started = time.monotonic()
    for service in config.services():
        if service.name in config.hold:
            _say(f"  {service.name:<18} held: `tickml stack start {service.name}` starts it")
            continue
        while (why := healthy(service, config, env)) is not None:
            if time.monotonic() > deadline:
                _say(f"  {service.name:<18} not healthy after {timeout_s:.0f} s: {why}")
                _say(_tail(config.logs / f"{service.name}.log"))
                _say("the stack is left running for a look: `tickml stack down` stops it")
                return 1
            time.sleep(0.5)
        where = config.place.url(service.name) if service.health.startswith("http:") else ""
        _say(f"  {service.name:<18} up after {time.monotonic() - started:5.1f} s  {where}")
    _say("stack up: `tickml stack status` shows it, `tickml stack down` (make stack-down) stops it")
    return 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def down(config: StackConfig, *, timeout_s: float = 20.0) -> int:
    """Stop supervisord (it stops every program) and whatever of the stack still runs after it."""
    pid = supervisord_pid(config)
    if pid:
        os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).wait(timeout=timeout_s)
    left = stack_processes(config)
    if left:
        _say(f"stopping {len(left)} processes supervisord left: {[p.name() for p in left]}")
        left = kill_processes(left, grace_s=3.0)
    if left:
        _say(f"could not stop {[p.pid for p in left]}")
        return 1
    _say(
        f"stack in {config.path} stopped; nothing of it runs" if pid else f"no stack running in {config.path}"
    )
    return 0


def status(config: StackConfig) -> int:
    """Each program's state, pid, uptime and health; 0 when every started one is healthy."""
    if not supervisord_pid(config):
        _say(f"no stack running in {config.path}")
        return 1
    env = running_environment(config)
    infos = {i["name"]: i for i in supervisor(config).supervisor.getAllProcessInfo()}
    bad = 0
    for service in config.services():
        info = infos.get(service.name, {})
        why = healthy(service, config, env) if info.get("statename") == "RUNNING" else info.get("statename")
        state = info.get("statename")
        expected = (service.once and state == "EXITED") or (
            service.name in config.hold and state == "STOPPED"
        )
        bad += why is not None and not expected
        print(
            f"{service.name:<18} {info.get('statename', '?'):<9} {info.get('description', ''):<28} "
            f"{'healthy' if why is None else why}"
        )
    return 1 if bad else 0


def iter_program_pids(config: StackConfig) -> Iterator[tuple[str, int]]:
    """(program, pid of the process its wrapper runs) for each running program."""
    for info in supervisor(config).supervisor.getAllProcessInfo():
        if info["statename"] == "RUNNING":
            with contextlib.suppress(psutil.Error):
                children = psutil.Process(info["pid"]).children()
                if children:
                    yield info["name"], children[0].pid


def _control(action: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        config = StackConfig.load(args.dir)
        if not supervisord_pid(config):
            _say(f"no stack running in {config.path}")
            return 1
        rpc = supervisor(config).supervisor
        try:
            if action in ("stop", "restart"):
                rpc.stopProcess(program(args.name))
            if action in ("start", "restart"):
                rpc.startProcess(program(args.name))
        except xmlrpc.client.Fault as exc:
            _say(f"tickml stack {action} {args.name}: {exc.faultString}")
            return 1
        _say(f"{args.name}: {rpc.getProcessInfo(program(args.name))['statename']}")
        return 0

    return run


def _up(args: argparse.Namespace) -> int:
    ports = dict(DEFAULT_PORTS)
    for item in args.port or []:
        name, _, value = item.partition("=")
        if name not in ports or not value.isdigit():
            _say(f"--port {item}: expected NAME=PORT with NAME one of {', '.join(ports)}")
            return 2
        ports[name] = int(value)
    config = StackConfig(
        dir=str(args.dir),
        bind=args.host,
        ports=ports,
        feed=shlex.split(args.feed) if args.feed else None,
        hold=args.hold or [],
    )
    return up(config, timeout_s=args.timeout)


def add_command(sub: argparse._SubParsersAction) -> None:
    """`tickml stack up|down|status|start|stop|restart|run`."""
    stack = sub.add_parser(
        "stack",
        help="the production shape on this machine: PostgreSQL, MLflow server, Dagster webserver and daemon, "
        "the scoring service and the stream, supervised (`make stack`, `make stack-down`)",
        description="Runs the production stack as processes under supervisord: restarted when they fail, "
        "started in order once what they need is healthy, logs under <dir>/logs. The PostgreSQL password "
        f"comes from ${PASSWORD_ENV}, else the file ${PASSWORD_FILE_ENV} (default {DEFAULT_PASSWORD_FILE}, "
        "created with a random password).",
    )
    commands = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")

    def command(
        name: str, help_text: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help_text)
        p.add_argument(
            "--dir",
            type=Path,
            default=None,
            help="the stack's folder (default $TICKML_STACK_DIR or .tickml/stack)",
        )
        p.set_defaults(func=lambda args: func(_with_dir(args)))
        return p

    p = command("up", "start the stack (if it is not running) and wait until every service is healthy", _up)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address every listener binds (default 127.0.0.1: put authentication in front before "
        "widening it)",
    )
    p.add_argument(
        "--port",
        action="append",
        metavar="NAME=PORT",
        help=f"a service's port (defaults {', '.join(f'{k}={v}' for k, v in DEFAULT_PORTS.items())})",
    )
    p.add_argument(
        "--feed",
        default=None,
        metavar="OPTIONS",
        help='also run a simulated feed: `tickml feed` options, e.g. "--day 2026-11-02 --speed 10"',
    )
    p.add_argument(
        "--hold",
        action="append",
        metavar="NAME",
        help="define this program but start it only on `tickml stack start NAME`",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for health (default 300)")
    command("down", "stop the stack and everything it started", lambda a: down(StackConfig.load(a.dir)))
    command("status", "each program's state and health", lambda a: status(StackConfig.load(a.dir)))
    for action in ("start", "stop", "restart"):
        p = command(action, f"{action} one program", _control(action))
        p.add_argument(
            "name",
            help="program name (postgres, mlflow, dagster-webserver, dagster-daemon, scoring, stream, feed)",
        )
    p = command("run", "(supervisord's) run one program of the stack", lambda a: run_program(a.name, a.dir))
    p.add_argument("name")


def _with_dir(args: argparse.Namespace) -> argparse.Namespace:
    args.dir = (args.dir or default_dir()).resolve()
    return args
