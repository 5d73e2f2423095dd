"""Benchmark harness for dolma-tools (`make bench`); see benchmarks/README.md."""
