"""README.md's Python examples run as written: the README stays true."""

from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(backend, code, capsys):
    if "sklearn" in code:
        pytest.importorskip("sklearn")
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
