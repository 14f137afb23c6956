"""The local development stack the demo, the tests and the benchmarks share, all on 127.0.0.1: an Okta-shaped
OpenID Connect provider (npm ``oidc-provider``), JupyterHub with QCSAuthenticator behind configurable-http-proxy,
a stand-in QCS API, and Debian's Chromium for browser checks. Nothing here ships in the wheel."""
