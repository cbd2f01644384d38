"""Shared fixtures live in tests/support/ (one module per real part); conftests import them."""
