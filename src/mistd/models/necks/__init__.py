"""mistd.models.necks."""
