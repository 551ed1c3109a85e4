"""Pure metric math (no model code): fidelity statistics."""
