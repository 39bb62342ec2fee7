"""mistd.models.temporal."""
