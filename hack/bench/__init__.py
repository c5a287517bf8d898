"""Benchmarks of the node agent and the controller (make bench, docs/benchmarks.md)."""
