"""Benchmarks of aifsdk itself: bench_submit.py (submit overhead), bench_snapshot.py (snapshot cost).

The node throughput suite (`python -m benchmarks`) is not written yet (issue 6).
"""
