"""Compression building blocks the steps use: per-layer group sizes, llm-compressor recipes,
pruning in torch. Pure functions of a model or of params; no step context."""
