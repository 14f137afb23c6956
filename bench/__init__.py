"""Benchmarks of qcs-jupyter against real local parts: ``python -m bench [--quick] [--only P1,P3] [--load]``.

Each figure is a module with ``run(Options) -> Figure``; ``bench.run.FIGURES`` maps ids to them.
"""
