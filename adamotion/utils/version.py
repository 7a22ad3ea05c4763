"""The package version (recorded in checkpoints, bundles and training states)."""
__version__ = "0.1.0"  # keep equal to pyproject.toml's [project] version
