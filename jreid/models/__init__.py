"""jreid.models."""
