"""One call that adds what the credential handoff needs to a JupyterHub configuration."""

from __future__ import annotations

from typing import Any

from ..handoff import CREDENTIALS_SCOPE

#: Scopes of each user's server token: JupyterHub's defaults, plus fetching the owner's QCS credentials
#: and stopping itself (for "Restart server to refresh").
SERVER_TOKEN_SCOPES = [
    "users:activity!user",
    "access:servers!server",
    f"{CREDENTIALS_SCOPE}!user",
    "read:servers!server",
    "delete:servers!server",
]


def configure_hub(c: Any, *, authenticator: bool = True) -> None:
    """Configure JupyterHub for qcs-jupyter. Call it from ``jupyterhub_config.py``: ``configure_hub(c)``.

    - defines the custom scope ``custom:qcs:credentials``;
    - grants it, filtered to the user themselves, to the ``user`` role and to every server token;
    - lets each server token stop its own server (for "Restart server to refresh");
    - sets ``QCSAuthenticator`` as the authenticator (unless ``authenticator=False``).

    Existing ``custom_scopes``, ``load_roles`` and ``server_token_scopes`` entries are kept.
    """
    if authenticator:
        c.JupyterHub.authenticator_class = "qcs"
    scopes = dict(c.JupyterHub.get("custom_scopes", {}) or {})
    scopes.setdefault(CREDENTIALS_SCOPE, {"description": "Read your own Rigetti QCS credentials (for qcs-jupyter)."})
    c.JupyterHub.custom_scopes = scopes

    roles = [dict(r) for r in (c.JupyterHub.get("load_roles", []) or [])]
    user_role = next((r for r in roles if r.get("name") == "user"), None)
    if user_role is None:
        user_role = {"name": "user", "scopes": ["self"]}
        roles.append(user_role)
    user_scopes = list(user_role.get("scopes", ["self"]))
    if f"{CREDENTIALS_SCOPE}!user" not in user_scopes:
        user_scopes.append(f"{CREDENTIALS_SCOPE}!user")
    user_role["scopes"] = user_scopes
    c.JupyterHub.load_roles = roles

    existing = c.Spawner.get("server_token_scopes", []) or []
    if callable(existing):
        raise ValueError(
            "Spawner.server_token_scopes is a callable: add qcs_jupyter.hub.SERVER_TOKEN_SCOPES to what it returns"
        )
    c.Spawner.server_token_scopes = list(dict.fromkeys([*existing, *SERVER_TOKEN_SCOPES]))
