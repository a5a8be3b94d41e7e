"""jreid: unified person re-identification in JAX/Flax."""

__version__ = "0.1.0"


def load(directory: str, **kwargs):
  """Loads an exported model directory as a `jreid.inference.Encoder` (keyword arguments: see there)."""
  from jreid import inference  # pylint: disable=g-import-not-at-top  # keeps `import jreid` light
  return inference.load(directory, **kwargs)
