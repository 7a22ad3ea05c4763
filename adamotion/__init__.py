"""AdaMotion: motion-aware (AdaQF-adapted) text encoders for text-to-motion generation.

The public entry points import lazily (``import adamotion.motion`` must not pull in torch)::

    bundle = adamotion.load("default")      # a CheckpointBundle (adamotion.bundle)
    adamotion.available_checkpoints()        # ["default", ...]
"""
from adamotion.utils.version import __version__  # noqa: F401 (the one version string)


def load(name_or_path="default"):
    """The checkpoint bundle ``name_or_path`` (a name under ``checkpoints/`` or a folder); see :mod:`adamotion.bundle`."""
    from adamotion.bundle import load as load_bundle

    return load_bundle(name_or_path)


def available_checkpoints() -> list[str]:
    """Names of the checkpoint bundles under ``checkpoints/``."""
    from adamotion.bundle import available_checkpoints as names

    return names()
