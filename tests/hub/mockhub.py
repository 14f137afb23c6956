"""JupyterHub's own test Hub (``MockHub``) with the QCS admin page, run in a thread so tests can use ``requests``.

Only one such Hub runs at a time in a test process (JupyterHub keeps process-wide singletons, e.g. its
``CryptKeeper``): a module fixture or a test starts one and stops it before the next starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterator

import pytest
import requests
from jupyterhub.crypto import CryptKeeper
from jupyterhub.tests.mocking import MockHub, MockPAMAuthenticator
from jupyterhub.tests.utils import add_user, public_url
from traitlets.config import Config

from devstack.localhub import PROXY_DIR
from devstack.localidp import ensure_node_modules
from qcs_jupyter.hub import metrics
from qcs_jupyter.hub.admin import admin_handlers


class AdminPageAuthenticator(MockPAMAuthenticator):
    """JupyterHub's test authenticator (password = user name) with the admin page's routes, wired as
    QCSAuthenticator.get_handlers wires them, and the users known (and forgotten) as QCSAuthenticator.add_user
    (delete_user) makes them known (forgets them). It has no QCS session to revoke."""

    def get_handlers(self, app):
        return [*super().get_handlers(app), *admin_handlers(self)]

    def add_user(self, user):
        metrics.know_user(user.name)
        return super().add_user(user)

    def delete_user(self, user):
        metrics.forget_user(user.name)  # as QCSAuthenticator.delete_user: a deleted user is no longer counted
        return super().delete_user(user)


class HubInThread:
    """A started ``MockHub`` whose event loop runs in a thread.

    ``crypt_key`` encrypts auth_state (pass the same key to a second Hub on the same database to read it);
    ``db_url`` (``sqlite:///FILE``) keeps the database in a file that outlives this Hub, users included.
    """

    def __init__(self, *, crypt_key: bytes | None = None, db_url: str | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.app: MockHub | None = None
        self.crypt_key = crypt_key or os.urandom(32)
        self.db_url = db_url

    def call(self, coro, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> HubInThread:
        self.thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        CryptKeeper.instance().keys = [self.crypt_key]
        metrics.METRICS.reset()  # a new Hub process knows no user until it has seen or rebuilt them
        config = Config()
        config.Authenticator.enable_auth_state = True
        config.Authenticator.admin_users = {"admin"}
        config.JupyterHub.cookie_secret = os.urandom(32)  # in memory: no cookie-secret file in the working directory
        self.app = MockHub(config=config, authenticator_class=AdminPageAuthenticator)
        if self.db_url:
            self.app.test_clean_db = False  # a restarted Hub keeps its users (not a configurable trait)
        with pytest.MonkeyPatch.context() as mp:
            if self.db_url:
                mp.setenv("JUPYTERHUB_TEST_DB_URL", self.db_url)  # how MockHub takes a database
            await self.app.initialize([])
        await self.app.start()

    def stop(self) -> None:
        if self.app is not None:
            self.call(self.app.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()

    @property
    def url(self) -> str:
        return public_url(self.app)  # ends with the Hub's odd base_url, /@/space%20word/

    def add_users(self, states: dict[str, dict | None], *, observed: bool = True) -> None:
        """Users with these auth_states, saved in the database and (``observed``) seen by the Hub as
        QCSAuthenticator sees every state it saves."""

        async def add():
            for name, state in states.items():
                user = add_user(self.app.db, self.app, name=name)
                await user.save_auth_state(state)
                if observed:
                    metrics.observe_auth_state(name, state)

        self.call(add())

    def token(self, name: str, scopes: list[str] | None = None) -> str:
        async def new():
            user = self.app.users[name]
            return user.new_api_token(scopes=scopes)

        return self.call(new())

    def session(self, name: str) -> requests.Session:
        """Logged in through the Hub's login form (cookies, as a browser)."""
        session = requests.Session()
        session.cookies.update(self.call(self.app.login_user(name)))
        return session


@contextlib.contextmanager
def running_hub(**options) -> Iterator[HubInThread]:
    """A started ``HubInThread`` (configurable-http-proxy from ``devstack/proxy`` on PATH), stopped on exit."""
    ensure_node_modules(PROXY_DIR, package="configurable-http-proxy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{PROXY_DIR / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}")
        hub = HubInThread(**options)
        try:
            yield hub.start()
        finally:
            hub.stop()
