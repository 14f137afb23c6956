"""Who may pull a user's QCS credentials: that user's running servers, recognized by their API token.

JupyterHub keeps, for every server, an OAuth client whose secret is the (salted, hashed) API token that
server really holds: it is set at spawn, and updated when a spawner brings its own token back (DockerSpawner
resuming a stopped container with the token it was created with), and it lives in the Hub's database, so it
survives a Hub restart. A caller is a user's server when:

1. the token it presents is a token JupyterHub knows, owned by that user;
2. one of the user's active servers (running or starting) has an OAuth client whose secret is that token.

Everything else — the user's browser session, their personal tokens, admins, services, another user's server,
a stopped server — is not. No auth_state, role or scope is involved, so no configuration can get it wrong.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from jupyterhub import orm
from jupyterhub.utils import compare_token

#: JupyterHub's tokens are at most this long; anything longer is refused before any lookup.
MAX_TOKEN_LENGTH = 64


class _VerifiedSecrets:
    """Remembers which (client secret, token) pairs matched, so a pull costs one salted hash only the first time.

    Keys are the stored secret (already a salted hash) and a SHA-256 of the token: no token is kept.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._seen: OrderedDict[tuple[str, str], bool] = OrderedDict()

    def matches(self, secret: str, token: str) -> bool:
        key = (secret, hashlib.sha256(token.encode("utf-8")).hexdigest())
        if key in self._seen:
            self._seen.move_to_end(key)
            return self._seen[key]
        try:
            outcome = compare_token(secret, token)
        except ValueError:  # not a secret JupyterHub's hash format: never a match
            outcome = False
        self._seen[key] = outcome
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return outcome


_verified = _VerifiedSecrets()


def calling_server(db: Any, user: Any, token: str | None) -> str | None:
    """The name of ``user``'s active server that holds ``token`` ('' for the default server), or None."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    orm_token = orm.APIToken.find(db, token)
    if orm_token is None or orm_token.user is None or orm_token.user.id != user.orm_user.id:
        return None
    for name, spawner in user.spawners.items():
        if not spawner.active:
            continue
        client = getattr(spawner.orm_spawner, "oauth_client", None)
        secret = getattr(client, "secret", None)
        if secret and _verified.matches(secret, token):
            return name
    return None
