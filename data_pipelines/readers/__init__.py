"""Readers of the person re-identification datasets' on-disk layouts."""

from data_pipelines.readers.common import DatasetNotFoundError
from data_pipelines.readers.registry import DatasetSpec
from data_pipelines.readers.registry import get_reader
from data_pipelines.readers.registry import get_spec
from data_pipelines.readers.registry import list_datasets
from data_pipelines.readers.registry import load_dataset
