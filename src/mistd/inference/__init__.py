"""mistd.inference."""
