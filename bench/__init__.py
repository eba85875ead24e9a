"""Siyu benchmarks: ``make bench`` runs every suite on one local stack and writes ``bench/results.json``."""
