"""mistd.models.detectors."""
