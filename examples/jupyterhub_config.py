# JupyterHub with qcs-jupyter: local processes or systemd (LocalProcessSpawner / SystemdSpawner).
# Secrets come from the environment; never write them here.
#   export JUPYTERHUB_CRYPT_KEY=$(openssl rand -hex 32)   # encrypts auth_state, where the QCS tokens live
#   export OAUTH_CLIENT_ID=<your QCS OAuth client id>
#   export OAUTH_CLIENT_SECRET=<only for a confidential client; leave unset for a public one>
from qcs_jupyter.hub import configure_hub

c = get_config()  # noqa: F821

# Authenticator "qcs", the custom scope custom:qcs:credentials, the user role and the server token scopes.
configure_hub(c)

c.QCSAuthenticator.oauth_callback_url = "https://hub.example.org/hub/oauth_callback"
# The issuer defaults to QCS's own; set it for another Okta authorization server.
# c.QCSAuthenticator.issuer = "https://auth.qcs.rigetti.com/oauth2/aus8jcovzG0gW2TUG355"
c.QCSAuthenticator.allow_all = True  # or allowed_users / allowed_groups
# Who refreshes: "hub" (default; safe with rotation and confidential clients) or "shared" (see README).
c.QCSAuthenticator.credentials_mode = "hub"

c.JupyterHub.spawner_class = "systemd"  # or "localprocess"; every spawner works, the Hub never touches homes
