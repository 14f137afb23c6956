"""What the tests install, built once by ``scripts/setup.sh`` (the only step that talks to the package index), so
that no test or benchmark builds a wheel or runs pip while it runs.

- ``wheel()``: the project's wheel, as ``pip install .`` builds it from this checkout;
- ``user_image()``: a venv with that wheel and this machine's JupyterLab, installed with no Node on PATH (what a
  user's image gets; ``tests/test_packaging.py``);
- ``singleuser_env()``: a world-readable venv of Debian's ``/usr/bin/python3`` with the wheel and JupyterHub's
  single-user server, for servers run as real Unix users (``tests/e2e/test_unix_users.py``); built only as root;
- ``reference_wheel()``: the wheel of ``jupyter-resource-usage``, the size benchmark's point of comparison.

The wheel and the venvs are kept per state of the sources that go into the wheel (``sources_stamp()``): after an
edit, a test that needs them says to run ``bash scripts/setup.sh`` instead of testing a stale build.

    python -m devstack.artifacts          # build what is missing for the current sources (setup.sh runs this)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get("QCS_JUPYTER_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts")
#: Servers of real Unix users must read it: outside the checkout, whose parents may be private (e.g. /root).
SINGLEUSER_ROOT = Path(
    os.environ.get("QCS_JUPYTER_SINGLEUSER_ENVS")
    or f"/var/tmp/qcs-jupyter-singleuser-{hashlib.sha256(str(REPO).encode()).hexdigest()[:12]}"
)
SYSTEM_PYTHON = "/usr/bin/python3"
REFERENCE = "jupyter-resource-usage"
#: What goes into the wheel (and so decides whether a built one is current).
SOURCES = ("qcs_jupyter", "jupyter-config", "labextension/src", "labextension/schema", "labextension/style")
SOURCE_FILES = ("pyproject.toml", "README.md", "labextension/package.json", "labextension/install.json")
SKIP_PARTS = {"__pycache__", "labextension"}  # qcs_jupyter/labextension is the build's output, not a source


class ArtifactMissing(RuntimeError):
    """A test needs something scripts/setup.sh builds."""


def sources_stamp() -> str:
    """A hash of every file the wheel is built from, as they are now in the working tree."""
    digest = hashlib.sha256()
    files = [REPO / name for name in SOURCE_FILES]
    for top in SOURCES:
        for path in (REPO / top).rglob("*"):
            relative = path.relative_to(REPO).parts
            if path.is_file() and not (SKIP_PARTS & set(relative[1:-1]) or relative[-1].endswith(".pyc")):
                files.append(path)
    for path in sorted(set(files)):
        if path.is_file():
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _ready(root: Path, *parts: str) -> Path:
    """``root/<stamp>/parts`` for the sources as they are. Outside CI, when the sources changed since setup (e.g.
    while editing), the newest build is used with a warning; in CI (``CI=true``) only an exact one."""
    directory = root.joinpath(sources_stamp(), *parts)
    if (directory / ".ready").exists():
        return directory
    if os.environ.get("CI") != "true" and root.is_dir():
        built = [d.joinpath(*parts) for d in root.iterdir() if (d.joinpath(*parts) / ".ready").exists()]
        if built:
            newest = max(built, key=lambda d: (d / ".ready").stat().st_mtime)
            warnings.warn(
                f"the sources changed since scripts/setup.sh built {newest}; testing that build "
                "(run bash scripts/setup.sh to test the current sources)",
                stacklevel=3,
            )
            return newest
    raise ArtifactMissing(
        f"{directory} is missing: run bash scripts/setup.sh (it builds the wheel and the test venvs once, for "
        "the sources as they are, so that no test installs anything)"
    )


def wheel() -> Path:
    (built,) = _ready(ROOT, "wheel").glob("qcs_jupyter-*.whl")
    return built


def user_image() -> Path:
    """The venv (``bin/python``, ``bin/jupyter``...) with the wheel and JupyterLab, installed without Node."""
    return _ready(ROOT, "user-image") / "venv"


def singleuser_env() -> Path:
    return _ready(SINGLEUSER_ROOT) / "venv"


def reference_wheel() -> Path | None:
    found = sorted((ROOT / "reference").glob("*.whl"))
    return found[-1] if found else None


# --- building (setup.sh) -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _lock(directory: Path) -> Iterator[None]:
    """One builder at a time per directory (several test runs may share a checkout)."""
    import fcntl

    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _run(*cmd: str | Path, **kwargs) -> None:
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def _fresh(directory: Path) -> bool:
    """True when ``directory`` must be (re)built: it is then emptied."""
    if (directory / ".ready").exists():
        return False
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return True


def _pip_env() -> dict[str, str]:
    """pip's own settings (index, certificates, cache) as they are; nothing of this checkout on PYTHONPATH."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def build_wheel(stamp: str) -> Path:
    directory = ROOT / stamp / "wheel"
    with _lock(directory):
        if _fresh(directory):
            print("== building the qcs-jupyter wheel for the tests", flush=True)
            _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", directory, REPO, env=_pip_env())
            (directory / ".ready").touch()
    (built,) = directory.glob("qcs_jupyter-*.whl")
    return built


def build_user_image(stamp: str, built: Path) -> None:
    directory = ROOT / stamp / "user-image"
    with _lock(directory):
        if _fresh(directory):
            print("== test venv: the wheel and JupyterLab, installed without Node", flush=True)
            venv = directory / "venv"
            _run(sys.executable, "-m", "venv", venv)
            jupyterlab = __import__("jupyterlab").__version__
            env = {**_pip_env(), "PATH": str(venv / "bin")}  # no node on PATH while it installs
            _run(venv / "bin" / "python", "-m", "pip", "install", "-q", built, f"jupyterlab=={jupyterlab}", env=env)
            (directory / ".ready").touch()


def build_singleuser_env(stamp: str, built: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("useradd") or not Path(SYSTEM_PYTHON).exists():
        return  # the test that uses it is skipped there too
    directory = SINGLEUSER_ROOT / stamp
    with _lock(directory):
        if _fresh(directory):
            print("== single-user venv for real Unix users (system Python, the wheel, JupyterHub)", flush=True)
            venv = directory / "venv"
            _run(SYSTEM_PYTHON, "-m", "venv", venv)
            jupyterhub = __import__("jupyterhub").__version__
            _run(venv / "bin" / "pip", "install", "-q", built, f"jupyterhub=={jupyterhub}", env=_pip_env())
            _run("chmod", "-R", "a+rX", SINGLEUSER_ROOT)
            (directory / ".ready").touch()


def fetch_reference() -> None:
    directory = ROOT / "reference"
    with _lock(directory):
        if not list(directory.glob("*.whl")):
            directory.mkdir(parents=True, exist_ok=True)
            print(f"== the size benchmark's reference: {REFERENCE}", flush=True)
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--no-deps",
                    "--only-binary=:all:",
                    "-d",
                    str(directory),
                    REFERENCE,
                ],
                env=_pip_env(),
                check=False,
            )
            if done.returncode != 0:
                print(f"note: could not download {REFERENCE}; the size benchmark leaves it out", file=sys.stderr)


def prune(root: Path, keep: str, others: int = 2) -> None:
    """Drop the builds of older source states (each is a few hundred MB), keeping the ``others`` newest besides
    ``keep`` (another run in this checkout may still be using one)."""
    if not root.is_dir():
        return
    builds = [e for e in root.iterdir() if e.is_dir() and e.name not in (keep, "reference")]
    for entry in sorted(builds, key=lambda e: e.stat().st_mtime, reverse=True)[others:]:
        with _lock(entry):
            shutil.rmtree(entry, ignore_errors=True)


def main() -> None:
    stamp = sources_stamp()
    built = build_wheel(stamp)
    build_user_image(stamp, built)
    build_singleuser_env(stamp, built)
    fetch_reference()
    prune(ROOT, stamp)
    prune(SINGLEUSER_ROOT, stamp)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as cwd:  # pip builds from REPO; nothing lands in the caller's directory
        os.chdir(cwd)
        main()
