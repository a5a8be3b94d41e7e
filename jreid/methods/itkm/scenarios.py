"""ITKM's scenarios: plain constants, which configs import too."""

SCENARIOS = ("visible_infrared", "clothes_change", "cross_resolution")
