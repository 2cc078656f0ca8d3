"""Benchmarks of aifsdk itself: bench_submit.py (submit overhead), bench_snapshot.py (snapshot cost).

The node throughput suite: `python -m benchmarks` (Hydra app, benchmarks/__main__.py; suites in
configs/suite/), `python -m benchmarks.report RUN [RUN ...]` to compare runs; results schema in
benchmarks/results.py; the SDK's own overhead with pytest-benchmark in benchmarks/test_overhead.py.
"""
