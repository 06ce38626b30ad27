"""README.md's Python examples run as written: the README stays true."""

from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
ALWAYS_THERE = {"numpy", "fusedprop", "collections", "math", "os"}


def _optional_imports(code: str) -> list:
    names = re.findall(r"^(?:import|from) (\w+)", code, flags=re.M)
    return [n for n in dict.fromkeys(names) if n not in ALWAYS_THERE]


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(backend, code, capsys, tmp_path, monkeypatch):
    for name in _optional_imports(code):  # torch, onnxruntime, sklearn: skipped with a reason where missing
        pytest.importorskip(name)
    monkeypatch.chdir(tmp_path)  # examples may write files (mlp.onnx)
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})


def test_readme_has_the_interop_examples():
    joined = "\n".join(BLOCKS)
    assert "fp.onnx.export(" in joined and "fp.from_torch(" in joined and ".to_torch()" in joined
