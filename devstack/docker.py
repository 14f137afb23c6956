"""A private Docker engine for the end-to-end tests, and a JupyterHub user image built without any registry.

``DockerEngine`` starts its own ``dockerd`` (no systemd): no bridge, no iptables, its own data root, exec root,
pid file and unix socket; clients reach it through ``DOCKER_HOST``. Containers it runs use ``--network host`` only,
so everything stays on 127.0.0.1. Stopping it stops the daemon by its pid, ends the containerd processes it
started (found by its exec root), unmounts what it left mounted and never leaves a daemon behind.

``build_user_image`` makes the image a JupyterHub admin would build from a Jupyter Docker Stacks image plus
``pip install qcs-jupyter`` (see the README's Docker section), from nothing: ``debootstrap`` of this machine's
Debian release from its configured archive, ``docker import``, then a ``pip install`` of the project's wheel,
JupyterLab, the Hub's JupyterHub version, pyQuil and ipykernel inside a ``--network host`` container that reaches
the package index the way pip on this machine does, and ``docker commit``. The tag is a hash of the inputs, so a
second run reuses the image; images and the daemon's data live in a stable cache directory.

Example::

    with DockerEngine() as engine:
        image = build_user_image(engine)
        engine.docker("run", "--rm", "--network", "host", image, "python", "-V")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from .localhub import LocalHub
from .process import LoggedProcess

ROOT = Path(__file__).resolve().parents[1]
#: Images and the daemon's data survive between runs here (``QCS_JUPYTER_DOCKER_CACHE`` overrides it).
CACHE_DIR = Path(os.environ.get("QCS_JUPYTER_DOCKER_CACHE", "/var/tmp/qcs-jupyter-docker"))
#: The CA bundle pip on this machine verifies the package index with; mounted read-only into the build container.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
USER_IMAGE = "qcs-jupyter-user"
BASE_IMAGE = "qcs-jupyter-base"
#: The user inside the image, as in the Jupyter Docker Stacks images.
NB_USER, NB_UID, NB_HOME = "jovyan", 1000, "/home/jovyan"
VENV = "/opt/venv"
#: Bump when the way the image is built changes: the tag changes with it.
RECIPE_VERSION = "2"
#: What the project's wheel is built from (its content is hashed into the image tag).
#: (Not README.md: it is only the wheel's long description, and editing it should not rebuild a 1 GB image.)
WHEEL_INPUTS = ("pyproject.toml", "qcs_jupyter", "jupyter-config", "labextension")
PYQUIL = "pyquil==4.22.0"
IPYKERNEL = "ipykernel==7.4.0"


class DockerError(RuntimeError):
    """The engine could not be started, or an image could not be built."""


def unavailable_reason() -> str | None:
    """Why a private Docker engine cannot run here, or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return "a private dockerd needs Linux"
    if os.geteuid() != 0:
        return "starting a private dockerd needs root"
    missing = [name for name in ("dockerd", "debootstrap") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (scripts/setup.sh installs docker.io and debootstrap)"
    return None


def _setup_env() -> dict[str, str]:
    """The environment of the image build's own Python steps (pip): a set-up step like ``scripts/setup.sh``, which
    reaches the package index, so without a test harness's ``PYTHONPATH`` additions (a loopback-only guard)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _run(cmd: list[str], *, timeout: float, env: dict[str, str] | None = None, **kwargs: Any) -> str:
    """Run ``cmd``; its stdout. Raises ``DockerError`` with the tail of its output when it fails or hangs."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **kwargs)
    except subprocess.TimeoutExpired as e:
        raise DockerError(f"{shlex.join(cmd)} did not finish within {timeout:.0f} s") from e
    if done.returncode != 0:
        raise DockerError(f"{shlex.join(cmd)} exited with {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}")
    return done.stdout


def _mounts_under(*prefixes: Path) -> list[str]:
    """Mount points below any of ``prefixes``, deepest first."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            point = line.split()[1].encode().decode("unicode_escape")
            if any(point == str(p) or point.startswith(f"{p}/") for p in prefixes):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (the engine's own exec root: its containerd and shims)."""
    pids = []
    needle = text.encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
    return pids


def _with_descendants(pids: list[int]) -> list[int]:
    """``pids`` and every process below them (``/proc/*/stat`` parent links)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (proc / "stat").read_text()
                children.setdefault(int(stat[stat.rindex(")") + 2 :].split()[1]), []).append(int(proc.name))
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found and pid != os.getpid():
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


class DockerEngine(LoggedProcess):
    """A ``dockerd`` of our own, on a unix socket in a temporary directory; use as a context manager.

    ``storage_driver``: ``overlay2`` if the kernel and the cache's filesystem allow it, else ``vfs`` (slower, much
    more disk); ``None`` tries them in that order. Only one engine at a time uses a cache directory (a lock file,
    waited for at most ``lock_timeout`` seconds). Containers and volumes left by an earlier, interrupted run are
    removed at start; images are kept.
    """

    stop_timeout = 30.0

    def __init__(
        self,
        cache_dir: Path = CACHE_DIR,
        *,
        storage_driver: str | None = None,
        startup_timeout: float = 60.0,
        lock_timeout: float = 1800.0,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.storage_drivers = [storage_driver] if storage_driver else ["overlay2", "vfs"]
        self.storage_driver: str | None = None
        self.startup_timeout, self.lock_timeout = startup_timeout, lock_timeout
        self.exec_root: Path | None = None
        self.data_root: Path | None = None
        self._lock_fh: Any = None
        self.cli = shutil.which("docker", path=str(Path(shutil.which("dockerd") or "/usr/bin/dockerd").parent))
        self.cli = self.cli or shutil.which("docker", path="/usr/bin") or shutil.which("docker") or "docker"
        super().__init__(self.cache_dir / "dockerd.log")

    @property
    def socket(self) -> Path:
        assert self.exec_root is not None, "start() the engine first"
        return self.exec_root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of a Docker client of this engine (the CLI, docker-py, DockerSpawner)."""
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, timeout: float = 120.0, **kwargs: Any) -> str:
        """Run the ``docker`` CLI against this engine; its stdout."""
        return _run([self.cli, *args], timeout=timeout, env=self.env, **kwargs)

    def inspect(self, kind: str, name: str) -> dict[str, Any] | None:
        """``docker <kind> inspect NAME`` as a dict, or ``None`` when there is no such object."""
        try:
            return json.loads(self.docker(kind, "inspect", name))[0]
        except DockerError:
            return None

    def volume_path(self, name: str) -> Path:
        """Where volume ``name`` lives on this machine (a test can read a user's home there)."""
        info = self.inspect("volume", name)
        if info is None:
            raise DockerError(f"no volume {name!r}")
        return Path(info["Mountpoint"])

    def _lock(self) -> None:
        import fcntl

        self._lock_fh = open(self.cache_dir / "engine.lock", "w")  # noqa: SIM115 - held while the engine runs
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._lock_fh.close()
                    self._lock_fh = None
                    raise DockerError(
                        f"another run held the Docker cache {self.cache_dir} for {self.lock_timeout:.0f} s"
                    ) from None
                time.sleep(1.0)

    def start(self) -> DockerEngine:
        reason = unavailable_reason()
        if reason:
            raise DockerError(reason)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        self._end_killed_run()
        errors = []
        try:
            for driver in self.storage_drivers:
                try:
                    self._start_with(driver)
                    self.storage_driver = driver
                    break
                except DockerError as e:
                    errors.append(f"{driver}: {e}")
                    self.stop(release=False)
            else:
                raise DockerError("dockerd did not start:\n" + "\n".join(errors))
            self._remove_leftovers()
        except BaseException:
            self.stop()
            raise
        return self

    def _end_killed_run(self) -> None:
        """What an earlier engine of this cache left when its process was killed (no ``stop()``): containerd's
        shims and containers, found by that engine's exec root, and its mounts. Runs under the lock."""
        record = self.cache_dir / "exec-root"
        previous = record.read_text().strip() if record.exists() else ""
        if previous.startswith("/") and Path(previous).exists():
            self.exec_root = Path(previous)
            self.data_root = None
            self.stop(release=False)
        record.unlink(missing_ok=True)
        for leftover in [*self.cache_dir.glob("wheel-*"), *self.cache_dir.glob("rootfs-*")]:  # image build's temps
            shutil.rmtree(leftover, ignore_errors=True)

    def _start_with(self, driver: str) -> None:
        # The exec root holds containerd's sockets: keep its path short (unix socket paths are limited).
        self.exec_root = Path(tempfile.mkdtemp(prefix="qcsdock-", dir="/tmp"))
        (self.cache_dir / "exec-root").write_text(str(self.exec_root))
        self.data_root = self.cache_dir / f"data-{driver}"
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("")
        cmd = [
            shutil.which("dockerd") or "dockerd",
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--ip6tables=false",
            f"--storage-driver={driver}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.exec_root / 'dockerd.pid'}",
            f"-H=unix://{self.exec_root / 'docker.sock'}",
        ]
        self._spawn(cmd, env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise DockerError(f"dockerd exited:\n{self.log_text()[-3000:]}")
            if self.socket.exists():
                try:
                    info = json.loads(self.docker("info", "--format", "{{json .}}", timeout=10))
                    if info.get("Driver") != driver:
                        raise DockerError(f"dockerd runs storage driver {info.get('Driver')!r}, not {driver!r}")
                    return
                except DockerError as e:
                    if "storage driver" in str(e):
                        raise
            time.sleep(0.25)
        raise DockerError(f"dockerd was not ready within {self.startup_timeout:.0f} s:\n{self.log_text()[-3000:]}")

    def _remove_leftovers(self) -> None:
        """Containers and volumes an interrupted earlier run left in the cache (images are kept)."""
        containers = self.docker("ps", "-aq").split()
        if containers:
            self.docker("rm", "-f", "-v", *containers, timeout=120)
        volumes = self.docker("volume", "ls", "-q").split()
        if volumes:
            self.docker("volume", "rm", "-f", *volumes, timeout=120)

    def stop(self, release: bool = True) -> None:
        """Stop the daemon by its pid, end its containerd and shims, unmount what it left, drop the lock."""
        super().stop()  # SIGTERM: dockerd stops its containers and its containerd, then exits (else SIGKILL)
        if self.exec_root is not None:
            for _ in range(2):  # whatever outlived dockerd (killed): this engine's shims and their containers
                pids = _with_descendants(_pids_mentioning(str(self.exec_root)))
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                if not pids:
                    break
                time.sleep(0.5)
            for point in _mounts_under(self.exec_root, self.data_root or self.cache_dir):
                subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)
            shutil.rmtree(self.exec_root, ignore_errors=True)
            self.exec_root = None
            (self.cache_dir / "exec-root").unlink(missing_ok=True)
        if release and self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None


# ---------------------------------------------------------------------------------------------------------------
# The user image


def debian_release() -> str:
    """This machine's Debian release (``VERSION_CODENAME`` of /etc/os-release)."""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise DockerError("no VERSION_CODENAME in /etc/os-release")


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (deb822 sources first, then the one-line format)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
            uris = fields.get("URIs", "").split()
            if "main" in fields.get("Components", "").split() and uris and "security" not in uris[0]:
                return uris[0]
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                match = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+", line)
                if match and "security" not in match.group(1):
                    return match.group(1)
    raise DockerError("no Debian archive found in the apt sources")


def pip_access() -> tuple[list[str], dict[str, str]]:
    """How pip on this machine reaches its package index, to repeat inside a build container:
    ``docker run`` mount options (pip's config files and the local paths they name, read-only, at the same place)
    and the ``PIP_*`` environment."""
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    paths: set[Path] = {HOST_CA_BUNDLE}
    debug = _run([sys.executable, "-m", "pip", "config", "debug"], timeout=60, env=_setup_env())
    values = list(env.values())
    for line in debug.splitlines():
        match = re.match(r"^\s+(/\S+), exists: True$", line)
        if match:
            paths.add(Path(match.group(1)))
        match = re.match(r"^\s+[\w.-]+:\s+(.*)$", line)
        if match:
            values.append(match.group(1))
    for value in values:
        for word in value.split():
            path = word[len("file://") :] if word.startswith("file://") else word
            if path.startswith("/") and Path(path).exists():
                # A local index ("/x/simple") links its files relative to its parent: mount that.
                paths.add(Path(path).parent if Path(path).name == "simple" else Path(path))
    mounts = []
    for path in sorted(paths):
        mounts += ["-v", f"{path}:{path}:ro"]
    return mounts, env


def _wheel_inputs_hash() -> str:
    """A hash of what the project's wheel is built from (tracked and new files, as they are on disk)."""
    listed = _run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *WHEEL_INPUTS], timeout=60, cwd=ROOT
    )
    digest = hashlib.sha256()
    for name in sorted(set(listed.split("\n")) - {""}):
        path = ROOT / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def user_requirements() -> list[str]:
    """What the image holds besides the project: the Hub's JupyterHub and JupyterLab versions, pyQuil, ipykernel."""
    hub_side = [f"{name}=={installed_version(name)}" for name in ("jupyterhub", "jupyterlab")]
    return [*hub_side, PYQUIL, IPYKERNEL]


def _image_exists(engine: DockerEngine, name: str) -> bool:
    return engine.inspect("image", name) is not None


def build_base_image(engine: DockerEngine, *, timeout: float = 900.0) -> str:
    """A minimal Debian image of this machine's release, from its archive (``debootstrap``): Python 3 and its venv
    module, CA certificates, and the user ``jovyan`` (uid 1000) with home /home/jovyan."""
    release, mirror = debian_release(), debian_mirror()
    key = hashlib.sha256(f"{RECIPE_VERSION}\0{release}\0{mirror}".encode()).hexdigest()[:12]
    name = f"{BASE_IMAGE}:{release}-{key}"
    if _image_exists(engine, name):
        return name
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=engine.cache_dir) as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                release,
                str(rootfs),
                mirror,
            ],
            timeout=timeout,
        )
        _run(["chroot", str(rootfs), "useradd", "-m", "-u", str(NB_UID), "-s", "/bin/bash", NB_USER], timeout=60)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            _run([engine.cli, "import", "-", name], timeout=timeout, env=engine.env, stdin=tar.stdout)
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait(60)
    return name


def build_wheel(out_dir: Path, *, timeout: float = 900.0) -> Path:
    """The project's wheel of the current sources (with the built labextension inside)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(out_dir)],
        timeout=timeout,
        cwd=ROOT,
        env=_setup_env(),
    )
    wheels = sorted(out_dir.glob("qcs_jupyter-*.whl"))
    if not wheels:
        raise DockerError(f"pip wheel made no qcs_jupyter wheel in {out_dir}")
    return _checked_wheel(wheels[-1])


def _checked_wheel(path: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(path) as built:
        if not any(n.endswith("labextensions/qcs-jupyter/package.json") for n in built.namelist()):
            raise DockerError(f"{path.name} holds no labextension")
    return path


def user_image_tag() -> str:
    """The tag of the user image for the current sources: a hash of the wheel inputs, requirements and recipe."""
    key = "\0".join([RECIPE_VERSION, debian_release(), debian_mirror(), _wheel_inputs_hash(), *user_requirements()])
    return f"{USER_IMAGE}:{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def build_user_image(engine: DockerEngine, *, name: str | None = None, timeout: float = 1800.0) -> str:
    """The user image for the current sources, built once per content hash (or under ``name``); its name.

    Older user images are removed once a new one is built, so the cache holds one."""
    name = name or user_image_tag()
    if _image_exists(engine, name):
        return name
    base = build_base_image(engine)
    with tempfile.TemporaryDirectory(prefix="wheel-", dir=engine.cache_dir) as tmp:
        wheel = build_wheel(Path(tmp))
        mounts, pip_env = pip_access()
        env_args = [arg for k, v in pip_env.items() for arg in ("-e", f"{k}={v}")]
        script = " && ".join(
            [
                f"python3 -m venv {VENV}",
                f"{VENV}/bin/python -m pip install -q --no-cache-dir /wheel/{shlex.quote(wheel.name)} "
                + " ".join(shlex.quote(r) for r in user_requirements()),
                # The same kernelspec name as the test stack's pyQuil venv, so the kernel helpers serve both.
                f"{VENV}/bin/python -m ipykernel install --sys-prefix --name qcs-pyquil "
                "--display-name 'Python (pyQuil 4.22)'",
                f"{VENV}/bin/jupyter server extension list 2>&1 | grep -q 'qcs_jupyter.*enabled'",
                f"{VENV}/bin/jupyter labextension list 2>&1 | grep -q 'qcs-jupyter.*enabled'",
            ]
        )
        container = f"qcs-jupyter-build-{os.getpid()}"
        try:
            engine.docker(
                "run",
                "--name",
                container,
                "--network",
                "host",
                "-v",
                f"{tmp}:/wheel:ro",
                *mounts,
                *env_args,
                base,
                "sh",
                "-c",
                script,
                timeout=timeout,
            )
            engine.docker(
                "commit",
                "--change",
                f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--change",
                f"ENV HOME={NB_HOME}",
                "--change",
                f"USER {NB_UID}",
                "--change",
                f"WORKDIR {NB_HOME}",
                "--change",
                'CMD ["jupyterhub-singleuser"]',
                container,
                name,
                timeout=300,
            )
        finally:
            with contextlib.suppress(DockerError):
                engine.docker("rm", "-f", container)
    old = [
        ref
        for ref in engine.docker("images", USER_IMAGE, "--format", "{{.Repository}}:{{.Tag}}").split()
        if ref != name
    ]
    if old:
        with contextlib.suppress(DockerError):  # an image a leftover container still uses stays
            engine.docker("rmi", *old, timeout=300)
    return name


@contextlib.contextmanager
def engine_and_image(cache_dir: Path = CACHE_DIR) -> Iterator[tuple[DockerEngine, str]]:
    """A started private engine and the user image for the current sources."""
    with DockerEngine(cache_dir) as engine:
        yield engine, build_user_image(engine)


# ---------------------------------------------------------------------------------------------------------------
# A Hub with DockerSpawner

#: The admin's example the Docker Hub runs; ``DockerHub`` adds only the stack's ports, image and host networking.
EXAMPLE_CONFIG = ROOT / "examples" / "dockerspawner_config.py"

HOST_NETWORK_SPAWNER = """
from urllib.parse import urlparse

from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port
from traitlets import default


class HostNetworkDockerSpawner(DockerSpawner):
    \"\"\"DockerSpawner on the host's network: each server listens on its own free port of 127.0.0.1.

    Docker publishes no ports on host networking, so the address is the one the container was created with (a
    resumed container keeps the address, like the API token, of its first start), as DockerSpawner's
    ``get_ip_and_port`` documentation says for ``network_mode=host``.
    \"\"\"

    @default("port")
    def _free_port(self):
        return random_port()

    async def get_ip_and_port(self):
        info = await self.docker("inspect_container", self.container_id)
        for entry in info["Config"]["Env"]:
            if entry.startswith("JUPYTERHUB_SERVICE_URL="):
                url = urlparse(entry.split("=", 1)[1])
                return url.hostname, url.port
        return self.host_ip, self.port


c.JupyterHub.spawner_class = HostNetworkDockerSpawner
"""


class DockerHub(LocalHub):
    """A ``LocalHub`` that runs ``examples/dockerspawner_config.py`` against a private ``DockerEngine``.

    What it adds to the example: the stack's ports and callback URL, the image, host networking (each server on
    its own 127.0.0.1 port; the Hub API on 127.0.0.1), the stack's jupyter_server config (short sync margins, no
    news) mounted at /etc/jupyter, and a test harness's ``sitecustomize`` on ``PYTHONPATH``. The example itself
    mounts the Hub's CA (``HUB_CA_BUNDLE``: here the local IdP's throwaway CA, which signs the Hub's certificate)
    and points ``SSL_CERT_FILE`` at it, as an admin makes containers trust a private CA. ``remove``: ``DockerSpawner.remove`` (default False,
    DockerSpawner's own: a stopped container is resumed). Homes are the example's Docker volumes
    ``jupyterhub-user-{username}``; ``home(user)`` is where that volume lives on this machine.
    """

    def __init__(self, workdir: Path, idp: Any, *, engine: DockerEngine, image: str, remove: bool = False, **options):
        self.engine, self.image, self.remove = engine, image, remove
        super().__init__(workdir, idp, **options)

    def home(self, user: str) -> Path:
        return self.engine.volume_path(f"jupyterhub-user-{user}")

    def container(self, user: str, server: str = "") -> str:
        """The container name DockerSpawner gives ``user``'s server (its default ``name_template``)."""
        return f"jupyter-{user}--{server}" if server else f"jupyter-{user}"

    def container_env(self, user: str, server: str = "") -> dict[str, str]:
        info = self.engine.inspect("container", self.container(user, server))
        if info is None:
            raise DockerError(f"no container {self.container(user, server)}")
        return dict(entry.split("=", 1) for entry in info["Config"]["Env"])

    def config_text(self) -> str:
        environment: dict[str, str] = {}
        volumes: dict[str, Any] = {str(self.workdir / "user-config"): {"bind": "/etc/jupyter", "mode": "ro"}}
        # A test harness's sitecustomize (e.g. a loopback-only guard) runs in the containers' Python too.
        guards = [
            p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p, "sitecustomize.py").is_file()
        ]
        if guards:
            environment["PYTHONPATH"] = os.pathsep.join(guards)
            volumes.update({p: {"bind": p, "mode": "rw"} for p in guards})
        # The admin's environment the example reads, then the example, then the stack's additions.
        return (
            super().config_text()
            + f"""
import os
os.environ["OAUTH_CALLBACK_URL"] = {self.callback_url!r}
os.environ["DOCKER_NOTEBOOK_IMAGE"] = {self.image!r}
os.environ["DOCKER_NETWORK_NAME"] = "host"
{f"os.environ['HUB_CA_BUNDLE'] = {str(self.idp.ca_path)!r}" if self.https else ""}
load_subconfig({str(EXAMPLE_CONFIG)!r})  # noqa: F821
c.QCSAuthenticator.allow_all = True
c.JupyterHub.hub_ip = "127.0.0.1"
c.DockerSpawner.client_kwargs = {{"base_url": {self.engine.host!r}}}
c.DockerSpawner.ip = "127.0.0.1"
c.DockerSpawner.host_ip = "127.0.0.1"
c.DockerSpawner.use_internal_ip = True  # publish no ports: host networking has none (see get_ip_and_port below)
c.DockerSpawner.remove = {self.remove!r}
c.DockerSpawner.cmd = ["jupyterhub-singleuser"]
c.DockerSpawner.args = []
c.DockerSpawner.environment.update({environment!r})
c.DockerSpawner.volumes.update({volumes!r})
{HOST_NETWORK_SPAWNER}
"""
        )


def main(argv: list[str] | None = None) -> None:
    """``python -m devstack.docker``: build the user image for the current sources if missing (a set-up step).
    ``--base``: only its Debian base image (no project sources, no venv needed: the set-up starts it early)."""
    base_only = "--base" in (sys.argv[1:] if argv is None else argv)
    what = "Docker base image" if base_only else "Docker user image"
    reason = unavailable_reason()
    if reason:
        print(f"note: no {what} built: {reason}; the Docker tests will be skipped (and fail in CI)")
        return
    began = time.monotonic()
    with DockerEngine() as engine:
        name = build_base_image(engine) if base_only else build_user_image(engine)
        print(f"== {what} {name} ready in {time.monotonic() - began:.0f} s ({engine.storage_driver})")


if __name__ == "__main__":
    main()
