"""What the browser tests of the panel share: a Hub whose user servers expose the front-end app to the page (for
theme switches and command checks), in JupyterLab and in Notebook 7, and the panel's usual moves."""

from __future__ import annotations

from playwright.sync_api import expect

from devstack.localhub import LocalHub


class ExposedHub(LocalHub):
    """A ``LocalHub`` whose user servers set ``window.jupyterapp`` in JupyterLab and in Notebook 7."""

    def user_server_config(self) -> dict:
        config = super().user_server_config()
        config.setdefault("LabApp", {})["expose_app_in_browser"] = True
        config["JupyterNotebookApp"] = {"expose_app_in_browser": True}
        return config


def open_panel(page, *, keyboard: bool = False):
    """Open the panel from the status item (a click, or Enter on the focused item); returns the panel."""
    item = page.locator(".qcs-jupyter-status-item")
    expect(item).to_be_visible(timeout=60_000)
    if keyboard:
        item.focus()
        page.keyboard.press("Enter")
    else:
        item.click()
    panel = page.locator("#qcs-jupyter-panel")
    expect(panel).to_be_visible()
    return panel


def wait_until_restored(page) -> None:
    """Wait until JupyterLab has restored its layout and filled the main area (the launcher, made once the file
    browser has restored too, takes the keyboard focus as it opens: late on a busy machine), and the focus moves
    that follow have run."""
    page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
    page.evaluate(
        """async () => {
          const app = window.jupyterapp;
          await app.restored;
          const until = Date.now() + 30000;
          while (app.shell.isEmpty('main') && Date.now() < until) await new Promise(r => setTimeout(r, 100));
          await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        }"""
    )


def set_theme(page, theme: str) -> None:
    """'JupyterLab Light' or 'JupyterLab Dark', through the app's own command; waits for the switch."""
    page.evaluate("theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme)
    light = "true" if theme == "JupyterLab Light" else "false"
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", light, timeout=30_000)
    page.wait_for_timeout(500)  # the theme's CSS variables apply


def ask_qcs(page, panel, outcome: str):
    """Click "Check with QCS" once QCS may be asked again, and wait for its answer."""
    check = panel.locator("[data-qcs-action=check-qcs]")
    for _ in range(3):
        expect(check).not_to_have_attribute("aria-disabled", "true", timeout=15_000)
        with page.expect_response(lambda r: r.request.method == "POST" and "/qcs-jupyter/check" in r.url) as answer:
            check.click()
        if answer.value.status != 429:
            break
        # Asked a moment ago (another page of this server): the panel says so, and when to try again.
        expect(panel.locator("[data-qcs-field=qcs-check-error]")).to_contain_text("try again in")
        page.wait_for_timeout(1000 * float(answer.value.headers["retry-after"]))
    assert answer.value.status == 200, answer.value.text()
    result = panel.locator("[data-qcs-field=qcs-check]")
    expect(result).to_have_attribute("data-qcs-outcome", outcome)
    return result
