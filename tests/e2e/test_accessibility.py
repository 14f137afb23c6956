"""Accessibility, in Chromium against the real Hub: the panel, the status-bar item and the QCS admin page pass
axe-core (npm, devstack/axe) with no serious or critical violation, in the light and the dark theme, and every
action works from the keyboard."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from devstack.localhub import login_with_http

from .axe import assert_accessible
from .browser import launch, new_page, sign_in
from .conftest import stack
from .pages import ExposedHub, ask_qcs, open_panel, set_theme, wait_until_restored

ADMIN = "opal"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with stack(
        tmp_path_factory.mktemp("a11y"),
        rotate=False,
        ttl=3600,
        qcs_api=True,
        hub_class=ExposedHub,
        extra_config=f"c.Authenticator.admin_users = {{{ADMIN!r}}}",
    ) as hub:
        yield hub


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def lab(hub, browser):
    """kai, logged in, in JupyterLab."""
    page = new_page(browser)
    sign_in(page, hub.url, "kai", wait_for="**/user/kai/lab**")
    expect(page.locator(".qcs-jupyter-status-item")).to_have_attribute("data-qcs-state", "ok", timeout=60_000)
    yield page
    page.context.close()


PANEL = ["#qcs-jupyter-panel", ".qcs-jupyter-status-item"]


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_panel_and_status_item_pass_axe(hub, lab, theme):
    page = lab
    set_theme(page, theme)
    panel = open_panel(page)
    assert_accessible(page, PANEL, f"the panel ({theme})")
    # With an answer of QCS shown, and with "Log in again" offered.
    ask_qcs(page, panel, "accepted")  # (after the few seconds since another test of this server asked QCS)
    assert_accessible(page, PANEL, f"the panel with QCS's answer ({theme})")
    hub.qcs_api.answer_with(401)
    try:
        ask_qcs(page, panel, "refused")
        expect(panel.locator("[data-qcs-action=login]")).to_be_visible()
        assert_accessible(page, PANEL, f"the panel with QCS's refusal and 'Log in again' ({theme})")
    finally:
        hub.qcs_api.answer_with(None)
        set_theme(page, "JupyterLab Light")


def test_paths_read_whole_in_a_narrow_sidebar(hub, lab):
    """Paths show as ~/.qcs/..., the full path on hover; in the narrowest sidebar lines break only after a '/'
    (every file or directory name stays on one line) and nothing sticks out of the panel."""
    page = lab
    panel = open_panel(page)
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:not(.lm-mod-hidden)").first
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(120, box["y"] + box["height"] / 2, steps=5)  # narrower than the panel's minimum
    page.mouse.up()
    width = panel.evaluate("p => p.getBoundingClientRect().width")
    assert width < 300, width
    settings = panel.locator("[data-qcs-field=settings-path] code")
    expect(settings).to_have_text("~/.qcs/settings.toml")
    expect(settings).to_have_attribute("title", str(hub.home("kai") / ".qcs" / "settings.toml"))
    lines = panel.evaluate(
        """p => {
          const parts = [...p.querySelectorAll('.qcs-jupyter-path-part')];
          const line = Math.min(...parts.map(e => e.getBoundingClientRect().height));
          return {
            count: parts.length,
            wrapped: parts.filter(e => e.getBoundingClientRect().height > line * 1.5).map(e => e.textContent),
            rows: new Set([...p.querySelectorAll('[data-qcs-field=issuer] .qcs-jupyter-path-part')]
              .map(e => Math.round(e.getBoundingClientRect().top))).size,
            overflow: p.scrollWidth - p.clientWidth,
          };
        }"""
    )
    assert lines["count"] >= 9 and lines["wrapped"] == [], lines
    assert lines["rows"] >= 2, lines  # the issuer URL did need more than one line, and broke after a '/'
    assert lines["overflow"] <= 0, lines


def focused(page) -> str | None:
    """The ``data-qcs-action`` of the element that has the keyboard focus (or its tag)."""
    return page.evaluate(
        "() => { const e = document.activeElement; return e ? (e.dataset.qcsAction || e.className || e.tagName) : null }"
    )


def test_every_action_of_the_panel_works_from_the_keyboard(hub, lab):
    page = lab
    page.reload()  # no answer of QCS shown yet
    wait_until_restored(page)  # else the launcher, opening late, can take the focus from the panel mid-test
    expect(page.locator(".qcs-jupyter-status-item")).to_have_attribute("data-qcs-state", "ok", timeout=60_000)
    panel = open_panel(page, keyboard=True)  # Enter on the status-bar item opens the panel
    panel.locator(".qcs-jupyter-title").click()  # start inside the panel, then only the keyboard
    seen = []
    for _ in range(30):  # Tab through the panel, in order, until the focus leaves it
        page.keyboard.press("Tab")
        if not page.evaluate("() => !!document.activeElement?.closest('#qcs-jupyter-panel')"):
            break
        seen.append(focused(page))
    assert seen == ["copy-path", "copy-path", "check-qcs", "restart", "refresh", "check"], seen

    # Each action from the keyboard: copy a path (Space), ask QCS, pull from the Hub, read the files again (Enter).
    def press(action: str, key: str = "Enter", nth: int = 0) -> None:
        panel.locator(f"[data-qcs-action={action}]").nth(nth).focus()
        assert focused(page) == action
        page.keyboard.press(key)

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    press("copy-path", "Space")
    expect(panel.locator("[data-qcs-action=copy-path][data-qcs-copied=true]")).to_have_attribute(
        "aria-label", "Copied the full path of settings.toml"
    )
    assert page.evaluate("() => navigator.clipboard.readText()") == str(hub.home("kai") / ".qcs" / "settings.toml")
    assert focused(page) == "copy-path"  # the answer is beside the button; the focus stays
    with page.expect_response(lambda r: r.request.method == "POST" and "/qcs-jupyter/check" in r.url) as answer:
        press("check-qcs")
    if answer.value.status == 429:  # QCS was asked a moment ago (the previous test): the panel says when to retry
        expect(panel.locator("[data-qcs-field=qcs-check-error]")).to_contain_text("try again in")
        page.wait_for_timeout(1000 * float(answer.value.headers["retry-after"]) + 200)
        press("check-qcs")
    expect(panel.locator("[data-qcs-field=qcs-check]")).to_have_attribute("data-qcs-outcome", "accepted")
    with page.expect_response(lambda r: r.request.method == "POST" and "/qcs-jupyter/refresh" in r.url) as answer:
        press("refresh")
    assert answer.value.status == 200
    expect(page.get_by_text("QCS credentials refreshed.")).to_be_visible()
    with page.expect_response(lambda r: r.request.method == "GET" and "/qcs-jupyter/status" in r.url):
        press("check")
    # Restart: Enter opens the confirmation, Escape cancels it, and the server keeps running.
    press("restart")
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert hub.api("GET", "/users/kai")["servers"][""]["ready"]


def test_log_in_again_from_the_keyboard(hub, lab):
    """QCS refuses the token: the answer offers "Log in again", and Enter on it goes through the Hub's login and
    back to this page."""
    page = lab
    panel = open_panel(page)
    hub.qcs_api.answer_with(401)
    try:
        check = panel.locator("[data-qcs-action=check-qcs]")
        expect(check).not_to_have_attribute("aria-disabled", "true", timeout=10_000)
        check.focus()
        page.keyboard.press("Enter")
        login = panel.locator("[data-qcs-field=qcs-check] [data-qcs-action=login]")
        expect(login).to_be_visible()
    finally:
        hub.qcs_api.answer_with(None)
    login.focus()
    with page.expect_request(lambda r: r.method == "POST" and "/qcs-jupyter/refresh" in r.url, timeout=120_000):
        page.keyboard.press("Enter")
    page.wait_for_url("**/user/kai/lab**")


def test_admin_page_passes_axe_and_works_from_the_keyboard(hub, browser):
    login_with_http(hub, "uma")  # someone with a QCS session to revoke
    page = new_page(browser)
    sign_in(page, hub.url, ADMIN, next_path="/hub/home", wait_for="**/hub/home**")
    link = page.locator("[data-qcs-admin-link]")
    expect(link).to_be_visible()
    assert_accessible(page, ["nav"], "the Hub's nav bar with the QCS link")
    link.focus()
    page.keyboard.press("Enter")  # the Hub's home page leads to the QCS admin page
    page.wait_for_url("**/hub/qcs/admin")
    expect(page.locator("h1")).to_have_text("QCS token health")
    html = page.locator("html")
    for theme in ("light", "dark", "light"):  # the Hub's own theme toggle, there and back
        if html.get_attribute("data-bs-theme") != theme:
            page.locator("#dark-theme-toggle").click()
        expect(html).to_have_attribute("data-bs-theme", theme)
        page.wait_for_timeout(500)  # Bootstrap's colour transitions end
        assert_accessible(page, ["#qcs-admin", "[data-qcs-admin-link]"], f"the QCS admin page ({theme})")
    # Sort from the keyboard.
    page.locator('[data-qcs-sort="name"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**sort=name**")
    # Revoke uma's session from the keyboard: open the action, give a reason, submit.
    row = page.locator('tr[data-qcs-user="uma"]')
    row.locator("summary").focus()
    page.keyboard.press("Enter")
    reason = row.locator("input[name=reason]")
    expect(reason).to_be_visible()
    reason.focus()
    page.keyboard.type("keyboard test")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("[data-qcs-revoked]")).to_contain_text("uma")
    assert_accessible(page, ["#qcs-admin"], "the QCS admin page after a revoke")
    page.context.close()
