"""Operators: thin tasks that take already-validated spec params and delegate to pure helpers."""
