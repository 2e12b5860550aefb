"""Benchmarks: per-stage latency, memory and FLOPs of the predictor, printed as JSON."""
