"""Real digits as Kaggle-style CSV files, for tests that run the trainer on a few rows."""

import pandas as pd

import tinygrad_np as tg


def write_sample_csvs(folder, n_train: int, n_test: int) -> None:
    """folder/train.csv and folder/test.csv: the first rows of the bundled sample, with a header
    'label,pixel0,...,pixel783'."""
    d = tg.data.load_mnist("sample")
    for name, x, y in (
        ("train.csv", d.x_train[:n_train], d.y_train[:n_train]),
        ("test.csv", d.x_test[:n_test], d.y_test[:n_test]),
    ):
        frame = pd.DataFrame(x.reshape(len(x), -1), columns=[f"pixel{i}" for i in range(784)])
        frame.insert(0, "label", y)
        frame.to_csv(folder / name, index=False)
