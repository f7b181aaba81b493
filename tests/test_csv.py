"""The MNIST CSV reader: which layouts it accepts, the label column, file line numbers in messages,
and splits that would leave a set empty."""

import numpy as np
import pandas as pd
import pytest

from tinygrad_np import DataError, data
from tinygrad_np.data import write_idx


def frame(n=6, seed=0, label="label"):
    rng = np.random.default_rng(seed)
    f = pd.DataFrame(rng.integers(0, 256, (n, 784)), columns=[f"pixel{i}" for i in range(784)])
    f.insert(0, label, rng.integers(0, 10, n))
    return f


def test_a_header_without_a_label_column_is_refused_not_guessed(tmp_path):
    f = frame(label="digit")
    f = f[[*f.columns[1:], "digit"]]  # the label last, under another name
    path = tmp_path / "digits.csv"
    f.to_csv(path, index=False)
    with pytest.raises(
        DataError,
        match=rf"^{path}: the header \(pixel0, pixel1, pixel2, \.\.\.\) "
        r"has no 'label' column.*--label-column",
    ):
        data.read_mnist_csv(path)
    x, y = data.read_mnist_csv(path, label_column="digit")
    np.testing.assert_array_equal(y, f["digit"])
    np.testing.assert_array_equal(x.reshape(6, -1), f.iloc[:, :784].to_numpy())
    np.testing.assert_array_equal(data.read_mnist_csv(path, label_column=784)[1], f["digit"])
    np.testing.assert_array_equal(data.read_mnist_csv(path, label_column="784")[1], f["digit"])


def test_label_column_errors_name_the_file(tmp_path):
    path = tmp_path / "t.csv"
    frame().to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"^{path}: no label column named 'y' \(the header has no"):
        data.read_mnist_csv(path, label_column="y")
    with pytest.raises(DataError, match=r"label column 900 is outside the 785 columns"):
        data.read_mnist_csv(path, label_column=900)
    frame().to_csv(path, index=False, header=False)
    with pytest.raises(DataError, match=r"no label column named 'label' \(the file has no header"):
        data.read_mnist_csv(path, label_column="label")


def test_messages_use_file_line_numbers(tmp_path):
    path = tmp_path / "t.csv"
    f = frame().astype(float)
    f.loc[3, "label"] = 2.5  # data row 3: line 5 with the header
    f.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"label 2.5 on line 5 is not a whole number"):
        data.read_mnist_csv(path)
    f.to_csv(path, index=False, header=False)  # without a header: line 4
    with pytest.raises(DataError, match=r"label 2.5 on line 4 is not a whole number"):
        data.read_mnist_csv(path)
    text = frame().to_csv(index=False).splitlines()
    path.write_text("\n".join([*text[:3], "", *text[3:]]) + "\n")  # a blank line 4
    with pytest.raises(DataError, match=r"missing value on line 4"):
        data.read_mnist_csv(path)


def test_a_one_row_csv_cannot_be_split(tmp_path):
    path = tmp_path / "one.csv"
    frame(1).to_csv(path, index=False)
    with pytest.raises(
        DataError, match=rf"^{path}: 1 data row; holding 1/6 out .* at least 2 rows"
    ):
        data.load_mnist(train_csv=path)
    frame(2).to_csv(path, index=False)
    d = data.load_mnist(train_csv=path)
    assert (len(d.y_train), len(d.y_test)) == (1, 1)


@pytest.mark.parametrize("empty", ["train", "t10k"])
def test_an_idx_folder_with_an_empty_set_is_refused(tmp_path, empty):
    for stem, n in (("train", 4), ("t10k", 3)):
        n = 0 if stem == empty else n
        write_idx(tmp_path / f"{stem}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
        write_idx(tmp_path / f"{stem}-labels-idx1-ubyte.gz", np.zeros(n, np.uint8))
    with pytest.raises(DataError, match=rf"{empty}-images-idx3-ubyte.gz: holds 0 images"):
        data.load_mnist(data_dir=tmp_path)


def test_a_headerless_file_whose_first_column_is_constant_is_refused(tmp_path):
    f = frame(20)
    f = f[[*f.columns[1:], "label"]].copy()  # the label last, no header: column 0 is a pixel
    f["pixel0"] = 0
    path = tmp_path / "last.csv"
    f.to_csv(path, index=False, header=False)
    with pytest.raises(
        DataError,
        match=rf"^{path}: no header, and the first column, taken as the "
        r"label, is 0 on every line: it looks like a pixel column",
    ):
        data.read_mnist_csv(path)
    np.testing.assert_array_equal(data.read_mnist_csv(path, label_column=784)[1], f["label"])
    same = frame(3)
    same["label"] = 7
    same.to_csv(path, index=False, header=False)
    assert (data.read_mnist_csv(path, label_column=0)[1] == 7).all()  # when it really is
