"""The default job: `python -m jreid.main --config=configs/unified.py[:PRESET]`."""

from configs import image_reid

PRESETS = image_reid.PRESETS


def get_config(preset: str = "cpu"):
  return image_reid.get_config(preset)
