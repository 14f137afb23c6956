# JupyterHub with qcs-jupyter and DockerSpawner. The user image needs `pip install qcs-jupyter` (examples/Dockerfile:
# the server extension enables itself, the panel comes in the wheel); the Hub image needs
# `pip install "qcs-jupyter[hub]" dockerspawner`. Secrets (JUPYTERHUB_CRYPT_KEY, OAUTH_CLIENT_ID,
# OAUTH_CLIENT_SECRET) come from the Hub container's environment.
#
# DockerSpawner's defaults are fine, `remove = False` included: a stopped user container is started again with the
# API token it was created with, and the Hub recognizes the token a server really holds. The end-to-end tests run
# this file on a real Docker engine (tests/e2e/test_docker.py), adding only their ports, image and host networking.
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

# QCS clients in kernels refresh at the Hub's own issuer ({Hub URL}/hub/api/qcs/issuer), over https, so kernels must
# reach the Hub's public URL and trust its certificate. If a private CA signs it, give the containers a CA bundle
# (the public CAs plus yours: QCS's API still needs the public ones) and point SSL_CERT_FILE at it. HUB_CA_BUNDLE is
# a path on the Docker host.
if os.environ.get("HUB_CA_BUNDLE"):
    c.DockerSpawner.volumes[os.environ["HUB_CA_BUNDLE"]] = {"bind": "/etc/qcs-jupyter/ca-bundle.pem", "mode": "ro"}
    c.DockerSpawner.environment = {"SSL_CERT_FILE": "/etc/qcs-jupyter/ca-bundle.pem"}
