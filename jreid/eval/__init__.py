"""jreid.eval."""
