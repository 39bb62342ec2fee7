"""mistd: moving infrared small target detection (CHAL, BP-FPN, readers, synthetic IR video)."""

__version__ = "0.1.0"
