"""Hotline provider sandbox: every outbound provider played locally (dev and tests only)."""
