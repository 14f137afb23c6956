"""The documentation site builds and covers the code.

The site is built once here as ``scripts/docs.sh`` builds it (warnings are errors, every reference must resolve,
every internal link and anchor is checked). Then: every option of ``QCSAuthenticator``, ``QCSJupyterApp`` and
``QCSHubClient``, every route (each HTTP method of it), every metric, every status problem code and every Hub log
message that exists in the code must be in the docs, and the examples in the docs must parse (YAML, JSON, Python)
and name only metrics that exist.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import qcs_docs_facts  # noqa: E402 - the docs' own rules (which options are left out, the link check), no Sphinx

CONFIGURABLES = [
    ("qcs_jupyter.hub", "QCSAuthenticator"),
    ("qcs_jupyter.server", "QCSJupyterApp"),
    ("qcs_jupyter.server.hub_client", "QCSHubClient"),
]
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
LOG_LEVELS = {"info", "warning", "error", "exception", "critical"}
#: printf-style placeholders of logging calls
PLACEHOLDER = re.compile(r"%(?:\.\d+)?[sdfr]")


def source(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def squeeze(text: str) -> str:
    return " ".join(text.split())


def all_sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md")) if "_build" not in p.parts)


def requires_sphinx() -> None:
    """The docs extra (Sphinx 9) needs Python 3.11; missing elsewhere is a skip here and a failure in CI."""
    if sys.version_info < (3, 11):
        pytest.skip("the docs are built on Python 3.11 and later (Sphinx 9)")
    try:
        import myst_parser  # noqa: F401
        import sphinx  # noqa: F401
    except ImportError as e:
        message = f"the docs extra is not installed ({e}): pip install -e '.[docs]' (scripts/setup.sh does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; it is required in CI (CI=true)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The site, built fresh into a temporary directory with scripts/docs.sh's checks."""
    requires_sphinx()
    out = tmp_path_factory.mktemp("docs-html")
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-E",
        "-W",
        "--keep-going",
        "-n",
        "-q",
        "-b",
        "html",
        str(DOCS),
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, f"the docs build failed:\n{done.stdout}\n{done.stderr}"
    return out


def page(built: Path, name: str) -> str:
    return (built / name).read_text(encoding="utf-8")


# --- options ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("module", "name"), CONFIGURABLES, ids=[n for _, n in CONFIGURABLES])
def test_every_option_is_in_the_configuration_reference(built, module, name):
    cls = getattr(importlib.import_module(module), name)
    html = page(built, "reference/configuration.html")
    options = cls.class_traits(config=True)
    left_out = {
        n for n, t in options.items() if t.this_class.__module__.startswith(qcs_docs_facts.FOREIGN_TRAIT_MODULES)
    }
    if name != "QCSJupyterApp":
        assert not left_out, f"only the extension application's inherited options may be left out: {left_out}"
    missing = [n for n in sorted(options) if n not in left_out and f'id="{module}.{name}.{n}"' not in html]
    assert not missing, f"options of {name} missing from reference/configuration.html: {missing}"
    assert cls.class_own_traits(config=True), name  # the reference is not vacuous


# --- routes -------------------------------------------------------------------------------------------------------
def routes() -> list[tuple[str, str]]:
    """(METHOD, path) of every route qcs-jupyter adds: the Hub's under /hub, the server's under {base_url}."""
    from tornado.web import RequestHandler

    from qcs_jupyter.hub import QCSAuthenticator
    from qcs_jupyter.server import QCSJupyterApp

    server = QCSJupyterApp()
    server.initialize_handlers()
    found = []
    for prefix, handlers in (("/hub", QCSAuthenticator().get_handlers(None)), ("{base_url}", server.handlers)):
        for pattern, handler, *_ in handlers:
            path = prefix + (pattern if prefix == "/hub" else pattern.lstrip("/"))
            methods = [m for m in HTTP_METHODS if getattr(handler, m) is not getattr(RequestHandler, m)]
            assert methods, f"{pattern}: {handler.__name__} answers no HTTP method"
            found += [(m.upper(), path) for m in methods]
    return found


def route_pattern(method: str, path: str) -> re.Pattern[str]:
    """`METHOD /hub/api/qcs/users/{name}/revoke` as the docs write it: a regex group becomes any {placeholder}."""
    parts = re.split(r"\([^)]*\)", path)
    text = r"\{[a-z_]+\}".join(re.escape(p.replace("\\.", ".")) for p in parts)
    return re.compile(rf"`{method} {text}`")


def test_every_route_is_in_the_rest_api_page():
    found = routes()
    assert ("POST", "/hub/api/qcs/issuer/v1/token") in found and ("GET", "{base_url}qcs-jupyter/status") in found
    text = source("reference/rest-api.md")
    missing = [f"{m} {p}" for m, p in found if not route_pattern(m, p).search(text)]
    assert not missing, f"routes missing from docs/reference/rest-api.md (write them as `METHOD path`): {missing}"


# --- metrics ------------------------------------------------------------------------------------------------------
def test_every_metric_is_generated_and_explained(built):
    names = [row["name"] for row in qcs_docs_facts.metrics_rows()]
    assert names
    generated = page(built, "reference/metrics.html")
    explained = set(re.findall(r"^\| `(jupyterhub_qcs_[a-z_]+)`", source("operate/metrics.md"), flags=re.M))
    assert [n for n in names if n not in generated] == []
    assert explained == set(names), "docs/operate/metrics.md's table must list exactly the metrics the Hub exports"


def test_the_docs_name_only_metrics_that_exist():
    names = {row["name"] for row in qcs_docs_facts.metrics_rows()}
    histograms = {row["name"] for row in qcs_docs_facts.metrics_rows() if row["type"] == "histogram"}
    real = names | {f"{h}{suffix}" for h in histograms for suffix in ("_bucket", "_sum", "_count")}
    named = set(re.findall(r"\bjupyterhub_qcs_[a-z_]+", all_sources()))
    assert named - real == set(), "the docs name metrics the Hub does not export"


# --- status problems ----------------------------------------------------------------------------------------------
def test_every_problem_code_has_a_troubleshooting_entry(built):
    from qcs_jupyter.credentials.contract import QCSProblemCode

    # Each entry: its label line "(problem-<code>)=", up to the next label line.
    parts = re.split(r"^\(([\w-]+)\)=$", source("operate/troubleshooting.md"), flags=re.M)
    documented = {
        label.removeprefix("problem-"): body
        for label, body in zip(parts[1::2], parts[2::2], strict=True)
        if label.startswith("problem-")
    }
    codes = [code.value for code in QCSProblemCode]
    assert sorted(documented) == sorted(codes), "one troubleshooting entry per problem code, labelled problem-<code>"
    for code, body in documented.items():
        assert body.lstrip().startswith(f"### `{code}`"), code
        assert "What to do" in body, f"{code}: say what to do"
    generated = page(built, "reference/status.html")
    assert [
        c for c in codes if f'<code class="docutils literal notranslate"><span class="pre">{c}</span>' not in generated
    ] == []


# --- Hub log messages ---------------------------------------------------------------------------------------------
def hub_log_messages() -> list[tuple[str, str]]:
    """(file:line, format string) of every log call of the Hub side at level info and above."""
    found = []
    for path in sorted((ROOT / "qcs_jupyter" / "hub").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            logger = node.func.value
            if node.func.attr not in LOG_LEVELS or not (isinstance(logger, ast.Attribute) and logger.attr == "log"):
                continue
            first = node.args[0] if node.args else None
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                f"{where}: log with a constant format string and arguments, so the docs can quote it"
            )
            found.append((where, first.value))
    return found


def test_every_hub_log_message_is_in_troubleshooting():
    messages = hub_log_messages()
    assert len(messages) > 10
    text = squeeze(source("operate/troubleshooting.md"))
    missing = []
    for where, message in messages:
        fragments = [f.strip() for f in PLACEHOLDER.split(message.removeprefix("QCS: "))]
        fragments = [f for f in fragments if len(f) >= 12]
        if message.strip() == "QCS: %s":
            continue  # the configuration problems, checked below
        if not fragments or any(squeeze(f) not in text for f in fragments):
            missing.append(f"{where}: {message}")
    assert not missing, "Hub log messages missing from docs/operate/troubleshooting.md:\n" + "\n".join(missing)


def test_every_configuration_problem_is_in_troubleshooting(monkeypatch):
    from qcs_jupyter.hub import QCSAuthenticator

    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY", raising=False)
    for name in ("OAUTH_CLIENT_ID", "QCS_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    authenticator = QCSAuthenticator(issuer="http://idp.example.org", client_id="", oauth_callback_url="")
    problems = authenticator.configuration_problems()
    assert len(problems) == 4, problems
    text = squeeze(source("operate/troubleshooting.md"))
    for problem in problems:
        first = re.split(r"\. |; ", problem.replace("http://idp.example.org", "http://…"), maxsplit=1)[0]
        assert squeeze(first) in text, problem


# --- examples -----------------------------------------------------------------------------------------------------
def code_blocks(language: str) -> list[tuple[str, str]]:
    blocks = []
    for path in sorted(DOCS.rglob("*.md")):
        if "_build" in path.parts:
            continue
        for match in re.finditer(rf"^```{language}\n(.*?)^```", path.read_text(encoding="utf-8"), re.S | re.M):
            blocks.append((str(path.relative_to(DOCS)), match.group(1)))
    return blocks


def test_the_examples_parse():
    for where, block in code_blocks("yaml"):
        assert list(yaml.safe_load_all(block)), where
    for where, block in code_blocks("json"):
        try:
            json.loads(block)
        except ValueError as e:
            pytest.fail(f"{where}: {e}")
    for where, block in code_blocks("python"):
        compile(block, where, "exec")
    assert code_blocks("yaml") and code_blocks("json") and code_blocks("python")


def test_the_status_example_follows_the_schema():
    import jsonschema

    schema = json.loads((ROOT / "qcs_jupyter" / "credentials" / "status.schema.json").read_text(encoding="utf-8"))
    [(_, example), *_] = [b for b in code_blocks("json") if b[0] == "reference/status.md"]
    jsonschema.validate(json.loads(example), schema)


def test_the_alert_rules_are_prometheus_rule_groups():
    [rules] = [yaml.safe_load(b) for w, b in code_blocks("yaml") if w == "operate/metrics.md" and "groups:" in b]
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 5
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"} and rule["alert"] and rule["expr"], rule


def test_the_readme_links_into_the_docs():
    """The README keeps only the overview, the two commands and the deploy lines; its links must land."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if "://" not in t]
    assert any(t.startswith("docs/") and t.endswith(".md") for t in local)
    assert [t for t in local if not (ROOT / t).exists()] == []


# --- the link check itself ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("href", "broken"),
    [
        pytest.param("b.html", False, id="file"),
        pytest.param("b.html#there", False, id="anchor"),
        pytest.param("#here", False, id="same-page"),
        pytest.param("sub/", False, id="directory-index"),
        pytest.param("https://example.org/missing#x", False, id="external-not-checked"),
        pytest.param("c.html", True, id="missing-file"),
        pytest.param("b.html#nowhere", True, id="missing-anchor"),
        pytest.param("#nowhere", True, id="missing-same-page-anchor"),
        pytest.param("sub/none.png", True, id="missing-image"),
    ],
)
def test_the_link_check_finds_broken_links(tmp_path, href, broken):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text("<p>sub</p>")
    (tmp_path / "b.html").write_text('<h1 id="there">b</h1>')
    tag = f'<img src="{href}">' if href.endswith(".png") else f'<a href="{href}">x</a>'
    (tmp_path / "a.html").write_text(f'<p id="here">{tag}</p>')
    problems = qcs_docs_facts.broken_links(tmp_path)
    assert bool(problems) is broken, problems
