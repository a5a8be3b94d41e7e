"""Instruct-ReID and the unified model: constants (kinds), network (net), data side (tasks), method."""
