"""Reading and writing files: atomic writes, IDX, MNIST CSV, checkpoints. Nothing here unpickles."""

from .checkpoint import (
    Checkpoint,
    CheckpointError,
    is_checkpoint,
    load_checkpoint,
    restore,
    save_checkpoint,
)
from .files import DataError, atomic_write
from .idx import read_idx, write_idx
from .mnist_csv import read_mnist_csv
from .npz import available_memory

__all__ = [
    "atomic_write",
    "available_memory",
    "Checkpoint",
    "CheckpointError",
    "DataError",
    "is_checkpoint",
    "load_checkpoint",
    "read_idx",
    "read_mnist_csv",
    "restore",
    "save_checkpoint",
    "write_idx",
]
