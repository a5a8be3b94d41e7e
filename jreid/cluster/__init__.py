"""jreid.cluster."""
