"""The bench command runs and writes its JSON (one cheap figure, offline; the full run is documented in README)."""

from __future__ import annotations

import json

import pytest

from bench.run import main


@pytest.mark.e2e  # starts a local IdP, Hub and a user server
def test_bench_quick_smoke(tmp_path):
    out = tmp_path / "bench.json"
    code = main(["--quick", "--only", "P2", "--out", str(out)])
    report = json.loads(out.read_text())
    figures = {f["id"]: f for f in report["figures"]}
    assert set(figures) == {"P2"}
    assert report["machine"]["cpu_count"] >= 1
    assert figures["P2"]["value"] > 0 and figures["P2"]["details"]["server_start_ms"]["n"] == 10
    assert code == (0 if all(f["passed"] for f in figures.values()) else 1)
