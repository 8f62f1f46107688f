"""Hotline ingest service."""
