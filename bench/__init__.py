"""Benchmark of Sumatra Server against the limits of the machine it runs on.

Run ``python -m bench --help``; README.md ("Benchmark") says how to read the output.
"""
