"""axe-core (npm, ``devstack/axe``) in a Playwright page: the accessibility rules a page breaks, by impact."""

from __future__ import annotations

from pathlib import Path

from devstack.localidp import ensure_node_modules

AXE_DIR = Path(__file__).resolve().parents[2] / "devstack" / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
#: What must never be there: axe's two worst impacts.
BLOCKING = ("serious", "critical")

_RUN = """async (include) => {
  const result = await window.axe.run(
    { include: include.map(s => [s]) },
    { resultTypes: ['violations'] }
  );
  return result.violations.map(v => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map(n => ({ target: n.target.join(' '), summary: n.failureSummary, html: n.html.slice(0, 200) }))
  }));
}"""


def violations(page, include: list[str]) -> list[dict]:
    """Every axe violation inside the elements ``include`` selects (each must exist), worst first."""
    ensure_node_modules(AXE_DIR, package="axe-core")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    for selector in include:
        assert page.locator(selector).count() > 0, f"nothing to check: no {selector} on the page"
    found = page.evaluate(_RUN, include)
    order = {"critical": 0, "serious": 1, "moderate": 2, "minor": 3}
    return sorted(found, key=lambda v: order.get(v["impact"] or "minor", 4))


def assert_accessible(page, include: list[str], what: str) -> list[dict]:
    """No serious or critical axe violation in ``include``; returns the lesser ones (for the record)."""
    found = violations(page, include)
    blocking = [v for v in found if v["impact"] in BLOCKING]
    assert not blocking, f"{what}: axe-core finds serious or critical violations:\n" + "\n".join(
        f"- {v['impact']} {v['id']}: {v['help']}\n"
        + "\n".join(f"    {n['target']}: {n['summary']}" for n in v["nodes"])
        for v in blocking
    )
    return [v for v in found if v["impact"] not in BLOCKING]
