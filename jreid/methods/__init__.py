"""One module per method; `build(config, num_classes)` picks it from config.method."""

from ml_collections import ConfigDict


def build(config: ConfigDict, num_classes: int):
  """The method object named by config.method."""
  if config.method == "image_reid":
    from jreid.methods.image_reid import ImageReID
    return ImageReID(config, num_classes)
  raise ValueError(f"unknown config.method {config.method!r}; known: 'image_reid'")
