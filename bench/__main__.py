"""Benchmarks: not written yet (the benchmark issue). Says so instead of pretending."""

import sys

print("tidings benchmarks are not written yet; see the open benchmark issue", file=sys.stderr)
sys.exit(2)
