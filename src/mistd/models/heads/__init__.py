"""mistd.models.heads."""
