"""The unified job's smoke preset (CI): `python -m jreid.main --config=configs/smoke.py`."""

from configs import unified


def get_config():
  return unified.get_config("smoke")
