"""Hotline classifier service."""
