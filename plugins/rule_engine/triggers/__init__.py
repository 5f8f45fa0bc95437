"""Triggers the triggerer imports (they must live under ``plugins/`` or an installed package)."""
