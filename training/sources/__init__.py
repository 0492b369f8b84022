"""Image sources for training and evaluation: images with captions and structured attributes.

Use `load_source(name, split=...)`; `available_sources()` lists the names.
"""

from training.sources.base import Sample, available_sources, load_source

__all__ = ["Sample", "available_sources", "load_source"]
