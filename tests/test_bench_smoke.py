"""The bench command runs and writes its JSON (quick, cheap figures only; the full run is documented in README)."""

from __future__ import annotations

import json

from bench.run import main


def test_bench_quick_smoke(tmp_path):
    out = tmp_path / "bench.json"
    code = main(["--quick", "--only", "P5,P2", "--out", str(out)])
    report = json.loads(out.read_text())
    figures = {f["id"]: f for f in report["figures"]}
    assert set(figures) == {"P2", "P5"}
    assert report["machine"]["cpu_count"] >= 1
    assert figures["P5"]["value"] > 0 and figures["P2"]["value"] > 0
    assert code == (0 if all(f["passed"] for f in figures.values()) else 1)
