"""Reading and writing files: atomic writes, IDX, MNIST CSV, checkpoints. Nothing here unpickles."""

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, restore, save_checkpoint
from .files import DataError, atomic_write
from .idx import read_idx, write_idx
from .mnist_csv import read_mnist_csv

__all__ = [
    "atomic_write",
    "Checkpoint",
    "CheckpointError",
    "DataError",
    "load_checkpoint",
    "read_idx",
    "read_mnist_csv",
    "restore",
    "save_checkpoint",
    "write_idx",
]
