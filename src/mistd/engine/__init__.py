"""mistd.engine."""
