"""mistd.data."""
