"""jreid.methods."""
