# JupyterHub with qcs-jupyter and DockerSpawner. The user image needs `pip install qcs-jupyter`
# (the server extension enables itself); the Hub image needs `pip install "qcs-jupyter[hub]" dockerspawner`.
# Secrets (JUPYTERHUB_CRYPT_KEY, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET) come from the Hub container's environment.
import os

c = get_config()  # noqa: F821

c.JupyterHub.authenticator_class = "qcs"
c.QCSAuthenticator.oauth_callback_url = os.environ.get(
    "OAUTH_CALLBACK_URL", "https://hub.example.org/hub/oauth_callback"
)
c.QCSAuthenticator.allowed_users = set(os.environ.get("QCS_ALLOWED_USERS", "ada@example.org").split(","))

c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.image = os.environ.get("DOCKER_NOTEBOOK_IMAGE", "quay.io/jupyter/minimal-notebook:latest")
c.DockerSpawner.network_name = os.environ.get("DOCKER_NETWORK_NAME", "jupyterhub")
c.JupyterHub.hub_ip = "0.0.0.0"  # noqa: S104 - containers reach the Hub API by its container name
c.DockerSpawner.volumes = {"jupyterhub-user-{username}": "/home/jovyan"}  # ~/.qcs lives in the user's volume
