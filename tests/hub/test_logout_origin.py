"""Which logouts end the QCS session: only those the user meant (the Hub's own pages, their own server, a typed
URL). JupyterHub's logout is a GET without XSRF, so any site can navigate a browser to it; the browser test is
tests/e2e/test_logout_origin.py."""

from __future__ import annotations

import pytest

from qcs_jupyter.hub.authenticator import QCSLogoutHandler

HUB = "hub.example.org"
OWN = {HUB, "ada.users.example.org"}  # the Hub, and ada's own server under subdomains

CASES = [
    # (Sec-Fetch-Site, Referer, revoke?)
    pytest.param("same-origin", f"https://{HUB}/hub/home", True, id="hub-logout-button"),
    pytest.param("same-origin", None, True, id="same-origin-no-referer"),
    pytest.param("none", None, True, id="typed-url"),
    pytest.param("None", None, True, id="header-case-ignored"),
    pytest.param("cross-site", None, False, id="cross-site"),
    pytest.param("cross-site", f"https://{HUB}/hub/home", False, id="cross-site-whatever-the-referer"),
    pytest.param("same-site", "https://bob.users.example.org/user/bob/lab", False, id="another-users-server"),
    pytest.param("same-site", "https://ada.users.example.org/user/ada/lab", True, id="own-server-subdomain"),
    pytest.param("same-site", None, False, id="same-site-no-referer"),
    pytest.param(None, f"https://{HUB}/hub/home", True, id="no-fetch-metadata-own-referer"),
    pytest.param(None, "https://HUB.example.org/hub/home", True, id="host-case-ignored"),
    pytest.param(None, "https://evil.example.net/", False, id="no-fetch-metadata-foreign-referer"),
    pytest.param(None, f"https://{HUB}.evil.example.net/", False, id="referer-host-suffix"),
    pytest.param(None, f"https://{HUB}:8443/hub/home", False, id="referer-other-port"),
    pytest.param(None, None, False, id="no-fetch-metadata-no-referer"),
    pytest.param(None, "http://[broken", False, id="malformed-referer"),
    pytest.param("", "", False, id="empty-headers"),
    pytest.param("same-origin-ish", f"https://{HUB}/", False, id="unknown-fetch-site"),
]


@pytest.mark.parametrize(("fetch_site", "referer", "revoke"), CASES)
def test_only_a_logout_the_user_meant_revokes(fetch_site, referer, revoke):
    assert QCSLogoutHandler.logout_intended(fetch_site, referer, OWN) is revoke


def test_no_known_hosts_trusts_no_referer():
    assert QCSLogoutHandler.logout_intended(None, f"https://{HUB}/", {""}) is False
