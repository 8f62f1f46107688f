"""Test support shared by every service's tests: stack fixtures and topic readers.

Loaded as a pytest plugin by the repository's root conftest.py. Integration tests get a
unique topic namespace and a unique database, so tests never see each other's data.
"""
