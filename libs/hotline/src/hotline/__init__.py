"""Hotline shared library."""
