"""Benchmark of Sumatra Server against the limits of the machine it runs on.

Run ``python -m bench --help``; docs/benchmark.md says how to read the output.
"""
