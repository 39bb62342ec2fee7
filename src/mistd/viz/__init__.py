"""mistd.viz."""
