"""mistd.models.backbones."""
