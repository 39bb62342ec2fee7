"""mistd.losses."""
