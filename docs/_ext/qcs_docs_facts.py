"""What the docs read from the code, and the internal link check: plain Python, no Sphinx.

Used by the Sphinx extension (``qcs_docs.py``) and by ``tests/test_docs.py``, so both apply the same rules.
"""

from __future__ import annotations

import posixpath
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

#: Modules whose configurable options the reference leaves out (inherited by every extension application).
FOREIGN_TRAIT_MODULES = ("jupyter_server.", "jupyter_core.", "traitlets.")


def metrics_rows(namespace: str = "jupyterhub") -> list[dict[str, Any]]:
    """Every QCS metric, as exposed at /hub/metrics: name, type, labels with their values, help."""
    from prometheus_client import CollectorRegistry

    from qcs_jupyter.hub import metrics

    registry = CollectorRegistry()
    metrics.QCSMetrics(registry, namespace=namespace)
    rows = []
    for family in registry.collect():
        labels: dict[str, list[str]] = {}
        for sample in family.samples:
            for key, value in sample.labels.items():
                if key != "le" and value not in labels.setdefault(key, []):
                    labels[key].append(value)
        name = family.name + ("_total" if family.type == "counter" else "")
        rows.append({"name": name, "type": family.type, "labels": labels, "help": family.documentation})
    return rows


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []  # hrefs and srcs

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if values.get(key):
                self.ids.add(values[key] or "")
        url = values.get("href") if tag in ("a", "link") else values.get("src") if tag in ("img", "script") else None
        if url is not None:
            self.links.append(url)


def _parse(path: Path, cache: dict[Path, _Page]) -> _Page:
    if path not in cache:
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = page
    return cache[path]


def broken_links(outdir: Path) -> list[str]:
    """Every internal link of the built HTML that names a missing file or anchor, as 'page: url (why)'."""
    cache: dict[Path, _Page] = {}
    problems = []
    for html in sorted(outdir.rglob("*.html")):
        if html.relative_to(outdir).parts[0] == "_static":
            continue  # the theme's own template fragments
        page = _parse(html, cache)
        for url in page.links:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(("javascript:", "data:", "mailto:")):
                continue  # external: not checked (offline build)
            if not parts.path and parts.fragment in ("", "top"):
                continue  # "#": the theme's back-to-top and menu toggles
            target = html if not parts.path else (html.parent / unquote(parts.path))
            if parts.path.endswith("/") or (target.is_dir() and not parts.path.endswith(".html")):
                target = target / "index.html"
            target = Path(posixpath.normpath(str(target)))
            where = f"{html.relative_to(outdir)}: {url}"
            if not target.is_file():
                problems.append(f"{where} (no such file)")
                continue
            if parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _parse(target, cache).ids:
                problems.append(f"{where} (no element with id {unquote(parts.fragment)!r})")
    return problems
