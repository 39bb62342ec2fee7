"""mistd.evaluation."""
