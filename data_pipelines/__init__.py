"""Dataset readers, the synthetic multi-modal set and grain input pipelines."""
