# JupyterHub with qcs-jupyter: local processes or systemd (LocalProcessSpawner / SystemdSpawner).
# Secrets come from the environment; never write them here.
#   export JUPYTERHUB_CRYPT_KEY=$(openssl rand -hex 32)   # encrypts auth_state, where the QCS tokens live
#   export OAUTH_CLIENT_ID=<your QCS OAuth client id>
#   export OAUTH_CLIENT_SECRET=<only for a confidential client; leave unset for a public one>
c = get_config()  # noqa: F821

c.JupyterHub.authenticator_class = "qcs"
c.QCSAuthenticator.oauth_callback_url = "https://hub.example.org/hub/oauth_callback"
# Who may log in. Anyone with a QCS account could otherwise run code on this Hub.
c.QCSAuthenticator.allowed_users = {"ada@example.org", "grace@example.org"}
# or: c.QCSAuthenticator.allowed_groups = {...} with c.QCSAuthenticator.claim_groups_key = "groups"

c.JupyterHub.spawner_class = "systemd"  # or "localprocess"; every spawner works, the Hub never touches homes
