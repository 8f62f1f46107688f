"""The `hotline` operator command-line tool."""
