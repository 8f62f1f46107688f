"""Hotline console: the Staff Office's web page over the dispatcher's ops API and ingest."""
