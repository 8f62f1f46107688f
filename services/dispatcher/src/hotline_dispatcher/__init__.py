"""Hotline dispatcher service."""
