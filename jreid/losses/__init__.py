"""jreid.losses."""
