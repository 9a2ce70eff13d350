"""The version of hierbayes (one place, read by the package, the saved files and the posteriors)."""

__version__ = "0.1.0"
