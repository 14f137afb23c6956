"""The QCS admin page is reachable from the Hub's own pages: a "QCS tokens" nav link for whoever has ``admin-ui``,
with no configuration, and an admin's own ``page.html`` still wins."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader

from qcs_jupyter.hub.admin import add_nav_link

from .mockhub import running_hub

LINK = re.compile(r'<a class="nav-link[^"]*"\s+href="([^"]+)"[^>]*data-qcs-admin-link>QCS tokens</a>')


@pytest.fixture(scope="module")
def hub():
    with running_hub() as running:
        running.add_users({"ann": None})
        yield running


@pytest.mark.parametrize("page", ["hub/home", "hub/admin", "hub/token", "hub/qcs/admin"])
def test_an_admin_finds_the_link_on_the_hubs_pages(hub, page):
    response = hub.session("admin").get(f"{hub.url}{page}", timeout=30)
    assert response.status_code == 200
    (href,) = LINK.findall(response.text)
    assert href.endswith("/hub/qcs/admin") and href.startswith("/")
    assert 'href="' + href.replace("qcs/admin", "admin") + '"' in response.text  # beside the Hub's own Admin link
    current = 'aria-current="page"' in response.text.split("data-qcs-admin-link")[0].rsplit("<a ", 1)[1]
    assert current is (page == "hub/qcs/admin")


def test_a_plain_user_does_not(hub):
    response = hub.session("ann").get(f"{hub.url}hub/home", timeout=30)
    assert response.status_code == 200 and 'id="jupyterhub-logo"' in response.text
    assert "data-qcs-admin-link" not in response.text


# --- the loader, as JupyterHub builds it -------------------------------------------------------------------------
def hub_like(tmp_path: Path, own: Path | None) -> SimpleNamespace:
    """The parts of a JupyterHub app add_nav_link reads, with Jinja environments built as JupyterHub builds them."""
    data = tmp_path / "share"
    default = data / "templates"
    default.mkdir(parents=True)
    (default / "page.html").write_text(
        "<nav>{% block nav_bar_left_items %}<a href='home'>Home</a>{% endblock %}</nav>{% block main %}{% endblock %}"
    )
    (default / "home.html").write_text('{% extends "page.html" %}{% block main %}home{% endblock %}')
    paths = [str(own)] if own else []
    paths.append(str(default))  # JupyterHub appends its default directory
    loader = ChoiceLoader([PrefixLoader({"templates": FileSystemLoader([str(default)])}, "/"), FileSystemLoader(paths)])
    return SimpleNamespace(
        data_files_path=str(data),
        template_paths=paths,
        tornado_settings={
            "jinja2_env": Environment(loader=loader, autoescape=True),
            "jinja2_env_sync": Environment(loader=loader, autoescape=True),
        },
    )


def render(app, scopes) -> str:
    return app.tornado_settings["jinja2_env"].get_template("home.html").render(parsed_scopes=scopes, base_url="/hub/")


def test_zero_config_link_and_only_once(tmp_path):
    app = hub_like(tmp_path, None)
    assert add_nav_link(app) is True
    assert add_nav_link(app) is False  # a second Hub start in the same process changes nothing
    html = render(app, {"admin-ui"})
    assert "Home</a>" in html and 'href="/hub/qcs/admin"' in html and html.endswith("home")
    assert "qcs/admin" not in render(app, set())


def test_an_admins_own_page_wins(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "page.html").write_text(
        '{% extends "templates/page.html" %}{% block nav_bar_left_items %}MINE{% endblock %}'
    )
    app = hub_like(tmp_path, own)
    add_nav_link(app)
    html = render(app, {"admin-ui"})
    assert "MINE" in html and "qcs/admin" not in html


def test_outside_a_hub_nothing_happens():
    assert add_nav_link(None) is False
    assert add_nav_link(SimpleNamespace()) is False
