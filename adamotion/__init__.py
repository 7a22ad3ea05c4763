"""AdaMotion: motion-aware (AdaQF-adapted) text encoders for text-to-motion generation."""
__version__ = "0.1.0"
