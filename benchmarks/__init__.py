"""The node benchmark suite: throughput, memory bandwidth, collectives and domain workloads on one node.

    python -m benchmarks                           # quick suite on the detected device
    python -m benchmarks suite=healthcare          # a domain suite (configs/suite/)
    python -m benchmarks.report RUN [RUN ...]      # compare run folders

Installed with ``pip install 'aifsdk[bench]'``; the configs ship with aifsdk, so it runs from any
folder. Results schema: :mod:`benchmarks.results`.
"""
