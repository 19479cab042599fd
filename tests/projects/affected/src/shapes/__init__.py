"""Shapes: a small package with a module per concern."""
