"""The synthetic multi-modal person set: the embedded default dataset (see build.load)."""

from data_pipelines.synthetic.build import PRESETS, TEMPLATE_CAMID, load

__all__ = ["PRESETS", "TEMPLATE_CAMID", "load"]
