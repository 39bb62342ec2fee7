"""mistd.classical."""
