"""coffre: the backup daemon of a practice's NAS box."""

__version__ = "0.1.0"
