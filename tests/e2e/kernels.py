"""Run code in a kernel of a given kernelspec on a user's spawned server, as a notebook would.

The kernel is started through the server's REST API (so it runs with the server's environment, as the user's
kernels do); the test talks to it over ZMQ with the connection file the server wrote in the user's runtime dir.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import requests
from jupyter_client import BlockingKernelClient

from devstack.localhub import LocalHub

#: Kernelspecs ``scripts/setup.sh`` registers (``.venv-clients``), seen by servers of a ``client_kernels`` Hub.
PYQUIL = "qcs-pyquil"  # pyQuil 4.22 (qcs-sdk-python 0.21, credential core 0.12.8)
QCS_SDK = "qcs-sdk"  # qcs-sdk-python 0.31 (credential core 0.27)
#: The last line a cell prints that starts with this is its JSON result (see ``Kernel.call``).
RESULT_MARK = "@@result "


class KernelError(AssertionError):
    """The code raised in the kernel, or the kernel did not answer."""


class Kernel:
    """One kernel of ``kernel_name`` on ``user``'s default server; use as a context manager."""

    def __init__(
        self, hub: LocalHub, user: str, session: requests.Session, kernel_name: str, timeout: float = 60
    ) -> None:
        self.hub, self.user, self.session, self.kernel_name, self.timeout = hub, user, session, kernel_name, timeout
        self.id: str | None = None
        self.client: BlockingKernelClient | None = None

    @property
    def _api(self) -> str:
        return f"{self.hub.url}/user/{self.user}/api"

    def _xsrf(self) -> dict[str, str]:
        cookie = self.session.cookies.get("_xsrf", path=f"/user/{self.user}/")
        if cookie is None:  # jupyter-server sets it on its pages
            self.session.get(f"{self.hub.url}/user/{self.user}/lab", timeout=60)
            cookie = self.session.cookies.get("_xsrf", path=f"/user/{self.user}/")
        return {"X-XSRFToken": cookie or ""}

    def start(self) -> Kernel:
        xsrf = self._xsrf()  # the page visit also completes the server's OAuth login for this session
        response = self.session.get(f"{self._api}/kernelspecs", timeout=30)
        if response.status_code != 200:
            raise KernelError(f"GET {self._api}/kernelspecs answered HTTP {response.status_code}")
        specs = response.json()["kernelspecs"]
        if self.kernel_name not in specs:
            raise KernelError(
                f"{self.user}'s server has no kernelspec {self.kernel_name!r} (it has {sorted(specs)}); "
                "run bash scripts/setup.sh and start the Hub with client_kernels=True"
            )
        response = self.session.post(f"{self._api}/kernels", json={"name": self.kernel_name}, headers=xsrf, timeout=60)
        response.raise_for_status()
        self.id = response.json()["id"]
        runtime = self.hub.home(self.user) / ".local" / "share" / "jupyter" / "runtime"
        connection = runtime / f"kernel-{self.id}.json"
        deadline = time.monotonic() + self.timeout
        while not connection.exists():
            if time.monotonic() > deadline:
                raise KernelError(f"no connection file for kernel {self.id} within {self.timeout:.0f} s")
            time.sleep(0.1)
        self.client = BlockingKernelClient(connection_file=str(connection))
        self.client.load_connection_file()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=self.timeout)
        return self

    def run(self, code: str, timeout: float | None = None) -> str:
        """Execute ``code``; its printed output. Raises ``KernelError`` with the traceback if it raised."""
        assert self.client is not None, "start() the kernel first"
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                out.append("\n".join(content.get("traceback", [])))

        try:
            reply = self.client.execute_interactive(code, timeout=timeout or self.timeout, output_hook=hook)
        except TimeoutError as e:
            raise KernelError(f"the {self.kernel_name} kernel did not finish within {timeout or self.timeout} s") from e
        text = "".join(out)
        if reply["content"]["status"] != "ok":
            raise KernelError(
                f"{reply['content'].get('ename')}: {reply['content'].get('evalue')} in the {self.kernel_name} "
                f"kernel:\n{text[-4000:]}"
            )
        return text

    def call(self, code: str, timeout: float | None = None) -> Any:
        """Run ``code`` and return the JSON it printed on a line starting with ``RESULT_MARK``."""
        text = self.run(code, timeout)
        results = [line[len(RESULT_MARK) :] for line in text.splitlines() if line.startswith(RESULT_MARK)]
        if not results:
            raise KernelError(f"no result printed by the {self.kernel_name} kernel:\n{text[-4000:]}")
        return json.loads(results[-1])

    def shutdown(self) -> None:
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        if self.id is not None:
            # The server may already be gone; its kernels die with it.
            with contextlib.suppress(requests.RequestException):
                self.session.delete(f"{self._api}/kernels/{self.id}", headers=self._xsrf(), timeout=30)
            self.id = None

    def __enter__(self) -> Kernel:
        try:
            return self.start()
        except BaseException:
            self.shutdown()
            raise

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
