"""Invoke tasks, one module per area. Keep imports here light: `inv --list` loads them all."""
