"""jreid.train."""
