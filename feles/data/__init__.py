"""Datasets (registry and built-ins), their partitioning into devices, and label noise."""

from feles.data import cifar, diabetes, digits, emnist, fashion_mnist, mnist, shakespeare, synthetic  # noqa: F401  (importing registers the built-ins)
from feles.data.dataset import (
    DATASETS,
    DataRequest,
    DatasetParamsError,
    DatasetSource,
    DatasetUnavailableError,
    FederatedDataset,
    Split,
    Standardization,
    default_model_for,
    load_dataset,
    task_of_dataset,
)
from feles.data.devices_data import DeviceLabels, DevicePartitions, partition_devices
from feles.data.idx import read_idx, write_idx
from feles.data.location import resolve_data_dir
from feles.data.mislabel import mislabel
from feles.data.partition import (
    DirichletPartitioner,
    IidPartitioner,
    Partitioner,
    partitioner_for,
)
from feles.data.task import TASK_METRICS, Task, task_errors

__all__ = [
    "DATASETS",
    "TASK_METRICS",
    "DataRequest",
    "DatasetParamsError",
    "DatasetSource",
    "DatasetUnavailableError",
    "DeviceLabels",
    "DevicePartitions",
    "DirichletPartitioner",
    "FederatedDataset",
    "IidPartitioner",
    "Partitioner",
    "Split",
    "Standardization",
    "Task",
    "default_model_for",
    "load_dataset",
    "mislabel",
    "partition_devices",
    "partitioner_for",
    "read_idx",
    "resolve_data_dir",
    "task_errors",
    "task_of_dataset",
    "write_idx",
]
