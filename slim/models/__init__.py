"""Loading and writing parent models (embedded GGUF, tiny seeded models, user HF folders)."""
