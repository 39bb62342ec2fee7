"""mistd.models."""
