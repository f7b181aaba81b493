"""The README's Python examples run as written (in order, in one namespace)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    namespace["test_softplus_grad"]()  # the hypothesis test the README shows
    assert namespace["loss"].shape == () and namespace["W1"].grad.shape == (784, 128)
