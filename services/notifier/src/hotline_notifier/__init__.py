"""Hotline notifier service."""
