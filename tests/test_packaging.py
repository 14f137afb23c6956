"""The built wheel is what users install, and they need no Node (CONTRIBUTING.md: the wheel ships
the built labextension; README: "server extension (auto-enabled), labextension, CLI").

The wheel is built from this checkout with pip (as ``pip install .`` would) and inspected; it is installed into a
fresh venv with JupyterLab, with nothing but that venv on PATH (no ``node``), where JupyterLab must list the
labextension as enabled, jupyter-server the server extension, and a running ``jupyter lab`` must serve both. The
build and the install are done once by ``scripts/setup.sh`` (``devstack/artifacts.py``): no test talks to the
package index.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from devstack import artifacts
from devstack.localidp import free_port

LAB_NAME = "qcs-jupyter"  # the npm package name, and the labextension's directory
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def wheel() -> Path:
    """Built from this checkout by scripts/setup.sh (as ``pip install .`` would): no test builds or installs."""
    return artifacts.wheel()


def data_dir(names: list[str]) -> str:
    (dist_info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
    return dist_info.removesuffix(".dist-info") + ".data/data/"


def test_wheel_holds_the_prebuilt_labextension_and_server_config(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        data = data_dir(names)
        lab = f"{data}share/jupyter/labextensions/{LAB_NAME}/"
        package = json.loads(zf.read(f"{lab}package.json"))
        install = json.loads(zf.read(f"{lab}install.json"))
        server_config = json.loads(zf.read(f"{data}etc/jupyter/jupyter_server_config.d/qcs_jupyter.json"))
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()

    # The labextension as JupyterLab loads it: its package.json names the remote entry, which is in the wheel.
    assert package["name"] == LAB_NAME
    load = package["jupyterlab"]["_build"]["load"]
    assert f"{lab}{load}" in names, f"the labextension's entry point {load} is not in the wheel"
    assert re.fullmatch(r"static/remoteEntry\.[0-9a-f]+\.js", load)
    scripts = [n for n in names if n.startswith(f"{lab}static/") and n.endswith(".js")]
    assert len(scripts) >= 2, scripts  # the remote entry and at least one chunk
    assert f"{lab}schemas/{LAB_NAME}/plugin.json" in names
    assert (install["packageManager"], install["packageName"]) == ("python", "qcs-jupyter")
    # One version source: the npm package's version is the wheel's.
    version = re.search(r"^Version: (.+)$", metadata, re.MULTILINE).group(1)
    assert wheel.name.startswith(f"qcs_jupyter-{version}-")
    assert package["version"].replace("-", "") == version.replace("-", "")

    # The server extension is enabled by the config file pip puts into {prefix}/etc/jupyter.
    assert server_config == {"ServerApp": {"jpserver_extensions": {"qcs_jupyter": True}}}
    assert re.search(r"^qcs-jupyter = qcs_jupyter\.cli:main$", entry_points, re.MULTILINE)
    assert re.search(r"^qcs = qcs_jupyter\.hub:QCSAuthenticator$", entry_points, re.MULTILINE)

    # Nothing of the TypeScript build is needed (or shipped): no sources, no node_modules.
    assert not [n for n in names if n.endswith((".ts", ".tsx")) or "node_modules/" in n or "/src/" in n]


def clean_env(venv: Path, home: Path) -> dict[str, str]:
    """Only the venv on PATH (so no node), a fresh HOME, and no Jupyter or QCS settings from this machine."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER", "QCS_", "PYTHON", "VIRTUAL_ENV", "CONDA")) and k not in ("PATH", "HOME")
    }
    env.update(PATH=str(venv / "bin"), HOME=str(home))
    assert shutil.which("node", path=env["PATH"]) is None
    return env


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A venv with the wheel and this machine's JupyterLab, installed without node on PATH (by scripts/setup.sh),
    run here with a fresh HOME."""
    venv = artifacts.user_image()
    home = tmp_path_factory.mktemp("user-image") / "home"
    home.mkdir()
    return venv, clean_env(venv, home)


def run_in(venv: Path, env: dict[str, str], *cmd: str) -> str:
    done = subprocess.run(
        [str(venv / "bin" / cmd[0]), *cmd[1:]],
        env=env,
        cwd=env["HOME"],  # not the checkout: nothing may be imported from the sources
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return ANSI.sub("", done.stdout + done.stderr)


@pytest.mark.e2e
def test_fresh_install_without_node(fresh_venv):
    venv, env = fresh_venv
    where = run_in(venv, env, "python", "-c", "import qcs_jupyter; print(qcs_jupyter.__file__)")
    assert Path(where.strip()).is_relative_to(venv), where

    labextensions = run_in(venv, env, "jupyter", "labextension", "list")
    own = f"{venv}/share/jupyter/labextensions"
    assert own in labextensions, labextensions
    section = labextensions.split(own, 1)[1]
    assert re.search(rf"^\s+{LAB_NAME} v\S+ enabled OK \(python, qcs-jupyter\)$", section, re.MULTILINE), labextensions

    server_extensions = run_in(venv, env, "jupyter", "server", "extension", "list")
    section = server_extensions.split(f"Config dir: {venv}/etc/jupyter", 1)[-1]
    assert re.search(r"^\s+qcs_jupyter enabled$", section, re.MULTILINE), server_extensions
    assert re.search(r"^\s+qcs_jupyter \S+ OK$", section, re.MULTILINE), server_extensions

    assert run_in(venv, env, "qcs-jupyter", "--version").startswith("qcs-jupyter ")


@pytest.mark.e2e
def test_fresh_install_serves_the_extension_without_node(fresh_venv):
    """A running `jupyter lab` from that venv hands the browser the prebuilt labextension and answers the panel."""
    venv, env = fresh_venv
    port, token = free_port(), secrets.token_hex(16)
    cmd = [str(venv / "bin" / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}"]
    cmd += [f"--IdentityProvider.token={token}", "--LabApp.news_url=", "--ServerApp.root_dir=" + env["HOME"]]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = Path(env["HOME"]) / "lab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=env["HOME"], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                page = urllib.request.urlopen(f"{url}/lab?token={token}", timeout=5).read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.25)
        config = json.loads(re.search(r'<script id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S).group(1))
        (ours,) = [e for e in config["federated_extensions"] if e["name"] == LAB_NAME]
        script = urllib.request.urlopen(f"{url}/lab/extensions/{LAB_NAME}/{ours['load']}?token={token}", timeout=10)
        assert script.status == 200 and b"qcs-jupyter" in script.read()
        status = json.loads(urllib.request.urlopen(f"{url}/qcs-jupyter/status?token={token}", timeout=10).read())
        assert status["state"] == "missing", status  # a fresh home: no ~/.qcs yet, and the extension says so
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
