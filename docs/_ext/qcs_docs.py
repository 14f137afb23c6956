"""Sphinx extension of the qcs-jupyter docs: tables generated from the code, and an internal link check.

Directives (each renders what the installed code says, so the docs cannot drift from it):

- ``qcs-metrics-table``: every Prometheus metric ``qcs_jupyter.hub.metrics`` registers, with its type, labels and
  every label value, and its help text.
- ``qcs-problem-codes``: every status problem code (``QCSProblemCode``) with its meaning and a link to its
  troubleshooting entry (the label ``problem-<code>``, which the troubleshooting page must define).
- ``qcs-cli-help``: ``qcs-jupyter --help`` and the help of each subcommand.
- ``qcs-status-schema``: every definition of the status JSON Schema (``status.schema.json``, itself generated from
  ``qcs_jupyter/credentials/contract.py``) as tables of fields and values.

``autodoc-skip-member``: the configuration reference leaves out the options every jupyter-server extension
application inherits from ``ExtensionApp`` (log level, static paths, ...): they are not qcs-jupyter's.

``build-finished``: every internal link and image of the built HTML must name a file that exists and, with a
``#fragment``, an element with that id; a broken one is a Sphinx warning (an error with ``-W``). External links
are not checked (the build must work offline).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from qcs_docs_facts import FOREIGN_TRAIT_MODULES, broken_links, metrics_rows
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)


class _MarkdownDirective(SphinxDirective):
    """A directive that renders generated MyST Markdown (tables with roles in them)."""

    has_content = False

    def markdown(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        source = f"<{self.name}>"
        self.state.nested_parse(StringList(self.markdown(), source=source), self.content_offset, container)
        return container.children


class MetricsTable(_MarkdownDirective):
    def markdown(self) -> list[str]:
        lines = ["| metric | type | labels (every value) | help |", "|---|---|---|---|"]
        for row in metrics_rows():
            labels = "; ".join(
                f"`{key}`: " + ", ".join(f"`{v}`" for v in values) for key, values in row["labels"].items()
            )
            lines.append(f"| `{row['name']}` | {row['type']} | {labels or '—'} | {row['help']} |")
        return lines


class ProblemCodes(_MarkdownDirective):
    def markdown(self) -> list[str]:
        from qcs_jupyter.credentials.contract import QCSProblemCode

        lines = ["| code | what it means | what to do |", "|---|---|---|"]
        for code in QCSProblemCode:
            doc = (code.__doc__ or "").replace("|", "\\|")
            lines.append(f"| `{code.value}` | {doc} | {{ref}}`troubleshooting <problem-{code.value}>` |")
        return lines


SCHEMA = Path(__file__).resolve().parents[2] / "qcs_jupyter" / "credentials" / "status.schema.json"


def _schema_type(node: dict[str, Any]) -> str:
    """A JSON Schema type in words, with links to the other definitions."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"{{ref}}`{name} <schema-{name.lower()}>`"
    if "anyOf" in node or "oneOf" in node:
        return " or ".join(_schema_type(n) for n in node.get("anyOf") or node.get("oneOf"))
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " or ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    kind = node.get("type", "any")
    if kind == "array":
        return f"array of {_schema_type(node.get('items', {}))}"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


class StatusSchema(_MarkdownDirective):
    """Every definition of the status JSON Schema: the fields of each object, the values of each enum."""

    def markdown(self) -> list[str]:
        schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
        self.env.note_dependency(str(SCHEMA))
        lines: list[str] = []
        for name, node in schema["$defs"].items():
            lines += [f"(schema-{name.lower()})=", f"**`{name}`**: {_cell(node.get('description', ''))}", ""]
            if node.get("type") == "object":
                required = set(node.get("required", []))
                lines += ["| field | type | description |", "|---|---|---|"]
                for field, prop in node.get("properties", {}).items():
                    optional = "" if field in required else " (optional)"
                    lines.append(
                        f"| `{field}` | {_schema_type(prop)}{optional} | {_cell(prop.get('description', ''))} |"
                    )
            else:
                lines += ["| value | meaning |", "|---|---|"]
                for option in node.get("oneOf", []):
                    lines.append(f"| `{json.dumps(option.get('const'))}` | {_cell(option.get('description', ''))} |")
            lines.append("")
        return lines


def cli_help() -> str:
    """``qcs-jupyter --help`` and each subcommand's ``--help``, at a fixed width."""
    from qcs_jupyter.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        parser = build_parser()
        parts = ["$ qcs-jupyter --help", parser.format_help()]
        for action in parser._subparsers._group_actions:  # argparse keeps subcommands only there
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    parts += [f"$ qcs-jupyter {name} --help", sub.format_help()]
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    return "\n".join(parts).rstrip() + "\n"


class CliHelp(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        text = cli_help()
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def skip_inherited(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Leave out options an extension application inherits from jupyter-server and traitlets."""
    from traitlets import TraitType

    if isinstance(obj, TraitType):
        owner = getattr(obj, "this_class", None)
        if owner is not None and owner.__module__.startswith(FOREIGN_TRAIT_MODULES):
            return True
    return None


_ROLE = re.compile(r":(?:[\w.-]+:)+`~?!?([^`<]+?)(?:\s*<[^>]*>)?`")
_NAMED_REFERENCE = re.compile(r"`([^`<]+?)`__?(?![\w`])")


def plain_upstream_help(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """The help of options inherited from oauthenticator and JupyterHub, with their cross-references as plain code.

    Their help is written for their own docs (roles pointing into them, link targets defined elsewhere); here
    it is shown as text, so an upstream release cannot break this build. qcs-jupyter's own help stays strict.
    """
    from traitlets import TraitType

    owner = getattr(obj, "this_class", None) if isinstance(obj, TraitType) else None
    if owner is None or owner.__module__.startswith("qcs_jupyter"):
        return
    for i, line in enumerate(lines):
        line = _ROLE.sub(lambda m: f"``{m.group(1).strip()}``", line)
        lines[i] = _NAMED_REFERENCE.sub(lambda m: m.group(1), line)


def check_links(app: Sphinx, exception: BaseException | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for problem in broken_links(Path(app.outdir)):
        logger.warning("broken internal link: %s", problem, type="qcs", subtype="link")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("qcs-metrics-table", MetricsTable)
    app.add_directive("qcs-problem-codes", ProblemCodes)
    app.add_directive("qcs-cli-help", CliHelp)
    app.add_directive("qcs-status-schema", StatusSchema)
    app.connect("autodoc-skip-member", skip_inherited)
    app.connect("autodoc-process-docstring", plain_upstream_help)
    app.connect("build-finished", check_links)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
