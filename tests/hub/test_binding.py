"""Who may pull: only a token JupyterHub holds for one of the user's active servers. JupyterHub's own database
and token hashing (an in-memory SQLite), no running Hub."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from jupyterhub import orm
from jupyterhub.utils import hash_token

from qcs_jupyter.hub.binding import calling_server


class Hub:
    """Users, tokens and servers as JupyterHub's database holds them."""

    def __init__(self) -> None:
        self.db = orm.new_session_factory("sqlite:///:memory:")()
        self.db.add(orm.OAuthClient(identifier="jupyterhub"))  # the Hub's own client, which issues API tokens
        self.db.commit()
        self.users: dict[str, SimpleNamespace] = {}

    def user(self, name: str) -> SimpleNamespace:
        if name not in self.users:
            orm_user = orm.User(name=name)
            self.db.add(orm_user)
            self.db.commit()
            self.users[name] = SimpleNamespace(name=name, orm_user=orm_user, spawners={})
        return self.users[name]

    def token(self, name: str, value: str | None = None, **kwargs) -> str:
        return orm.APIToken.new(token=value, user=self.user(name).orm_user, scopes=["inherit"], **kwargs)

    def start(self, name: str, server: str = "", token: str | None = None) -> str:
        """What JupyterHub does at a spawn: a new token for the server, the server's OAuth client secret is it."""
        user = self.user(name)
        token = token or self.token(name, note=f"Server at /user/{name}/{server}")
        orm_spawner = orm.Spawner(user=user.orm_user, name=server)
        client = orm.OAuthClient(identifier=f"jupyterhub-user-{name}-{server}", secret=hash_token(token))
        orm_spawner.oauth_client = client
        self.db.add_all([orm_spawner, client])
        self.db.commit()
        user.spawners[server] = SimpleNamespace(name=server, active=True, orm_spawner=orm_spawner)
        return token

    def resume_with(self, name: str, server: str, old_token: str, new_token: str) -> None:
        """What JupyterHub does when a spawner (DockerSpawner) brings back the token its container was made with:
        the token it had just issued is deleted and the OAuth client's secret becomes the old token."""
        self.db.delete(orm.APIToken.find(self.db, new_token))
        self.user(name).spawners[server].orm_spawner.oauth_client.secret = hash_token(old_token)
        self.db.commit()


@pytest.fixture
def hub() -> Hub:
    return Hub()


def test_own_servers_are_recognized_and_nothing_else(hub):
    ada_default = hub.start("ada")
    ada_gpu = hub.start("ada", "gpu")
    bob_default = hub.start("bob")
    personal = hub.token("ada", note="personal")
    ada = hub.user("ada")
    assert calling_server(hub.db, ada, ada_default) == ""
    assert calling_server(hub.db, ada, ada_gpu) == "gpu"
    refused = {
        "personal token": personal,
        "another user's server": bob_default,
        "unknown token": "x" * 40,
        "empty": "",
        "too long": ada_default + "x" * 64,
        "not ascii": "é" * 20,
    }
    for what, token in refused.items():
        assert calling_server(hub.db, ada, token) is None, what
    assert calling_server(hub.db, hub.user("bob"), ada_default) is None  # ada's server for bob's name


def test_a_stopped_server_is_refused(hub):
    token = hub.start("ada")
    hub.user("ada").spawners[""].active = False
    assert calling_server(hub.db, hub.user("ada"), token) is None


def test_a_deleted_or_expired_token_is_refused_even_if_the_secret_matches(hub):
    token = hub.start("ada")
    hub.db.delete(orm.APIToken.find(hub.db, token))
    hub.db.commit()
    assert calling_server(hub.db, hub.user("ada"), token) is None
    expiring = hub.start("ada", "short", token=hub.token("ada", expires_in=60))
    assert calling_server(hub.db, hub.user("ada"), expiring) == "short"
    orm.APIToken.find(hub.db, expiring).expires_at = orm.APIToken.now() - timedelta(seconds=1)
    hub.db.commit()
    assert calling_server(hub.db, hub.user("ada"), expiring) is None


def test_a_resumed_server_works_with_the_token_it_brought_back(hub):
    """DockerSpawner (remove = False) resumes the stopped container, which holds the token it was created with."""
    first = hub.start("ada")
    hub.user("ada").spawners[""].active = False  # stopped; DockerSpawner's will_resume keeps the token
    issued = hub.token("ada", note="Server at /user/ada/")
    hub.user("ada").spawners[""].active = True
    hub.user("ada").spawners[""].orm_spawner.oauth_client.secret = hash_token(issued)  # as at spawn
    hub.resume_with("ada", "", old_token=first, new_token=issued)
    assert calling_server(hub.db, hub.user("ada"), first) == ""
    assert calling_server(hub.db, hub.user("ada"), issued) is None  # JupyterHub deleted the unused one


def test_a_server_without_an_oauth_client_is_refused(hub):
    token = hub.start("ada")
    hub.user("ada").spawners[""].orm_spawner.oauth_client = None
    assert calling_server(hub.db, hub.user("ada"), token) is None
