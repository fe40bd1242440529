"""Worked examples of extending unirouter_jax (see docs/extending.md)."""
