"""fp.onnx.export: the file passes onnx's checker and ONNX Runtime computes model(x)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import nn

from conftest import ALL_ACTIVATIONS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# ORT's Gemm sums in another order than fusedprop's GEMM: outputs near 0 need an
# absolute floor. float32 gelu goes through Erf, whose 1 + erf cancels for
# z < -3 (as in PyTorch's float32 gelu), hence its larger floor (see fp.onnx).
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}

ACTIVATION_MODULES = {
    "identity": lambda: nn.Identity(),
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "sigmoid": lambda: nn.Sigmoid(),
    "tanh": lambda: nn.Tanh(),
    "gelu": lambda: nn.GELU(),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "silu": lambda: nn.SiLU(),
}


def run_ort(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {fp.onnx.INPUT_NAME: x})
    return y


def reference(model, x):
    return np.asarray(model(x))


def inputs(dtype, batch, n_in, seed=0):
    # scale 2: pre-activations reach the tails (z ~ -6..6) where gelu, sigmoid
    # and the erfc arithmetic of float64 gelu are easiest to get wrong
    return (2 * np.random.default_rng(seed).standard_normal((batch, n_in))).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_every_activation_matches_onnx_runtime(backend, tmp_path, activation, bias, dtype):
    fp.manual_seed(0)
    # the activation both as a module after a Linear and fused into one
    model = nn.Sequential(nn.Linear(5, 16, bias=bias, dtype=dtype), ACTIVATION_MODULES[activation](),
                          nn.Linear(16, 3, bias=bias, activation=activation, dtype=dtype,
                                    negative_slope=0.3))
    path = tmp_path / "m.onnx"
    proto = fp.onnx.export(model, path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    assert [o.op_type for o in proto.graph.node].count("Gemm") == 2
    for batch in (0, 1, 7):
        x = inputs(dtype, batch, 5, seed=batch)
        y = run_ort(path, x)
        assert y.dtype == dtype and y.shape == (batch, 3)
        np.testing.assert_allclose(y, reference(model, x), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("opset", [13, 17, 20, 21])
def test_opsets(tmp_path, opset, dtype):
    """Every activation in one model, at several opsets (20 adds Gelu)."""
    fp.manual_seed(1)
    layers = [nn.Linear(4, 8, dtype=dtype)]
    for act in ALL_ACTIVATIONS:
        layers += [ACTIVATION_MODULES[act](), nn.Linear(8, 8, dtype=dtype)]
    model = nn.Sequential(*layers)
    proto = fp.onnx.export(model, tmp_path / "m.onnx", opset=opset)
    assert proto.opset_import[0].version == opset
    ops = {n.op_type for n in proto.graph.node}
    if dtype == np.float32:
        assert ("Gelu" in ops) == (opset >= 20)
    else:
        assert not ops & {"Erf", "Gelu", "LeakyRelu"}  # ORT has no float64 kernels for them
    x = inputs(dtype, 9, 4)
    np.testing.assert_allclose(run_ort(tmp_path / "m.onnx", x), reference(model, x), **TOL[dtype])


def test_float64_erfc_over_the_whole_line(tmp_path):
    """The erfc arithmetic of float64 gelu against libm's erfc, tails, zeros, Inf and NaN included."""
    lin = nn.Linear(1, 1, bias=False, activation="gelu", dtype=np.float64)
    lin.weight.data[:] = 1.0
    fp.onnx.export(lin, tmp_path / "g.onnx")
    z = np.concatenate([np.linspace(-38, 38, 20001), [0.0, -0.0, 1e-300, -1e-300, 0.46875 * math.sqrt(2),
                                                    -4 * math.sqrt(2), 1e300, -1e300, np.inf, -np.inf, np.nan]])
    y = run_ort(tmp_path / "g.onnx", z[:, None])[:, 0]
    expected = np.array([0.5 * v * math.erfc(-v * math.sqrt(0.5)) if math.isfinite(v) else np.nan for v in z])
    finite = np.isfinite(z)
    # atol: subnormal results (z < -37.5) carry fewer significant bits
    np.testing.assert_allclose(y[finite], expected[finite], rtol=2e-15, atol=1e-306)
    # gelu(+Inf) = +Inf, gelu(-Inf) = -Inf * 0 = NaN (as PyTorch), NaN stays NaN
    np.testing.assert_array_equal(y[~finite], [np.inf, np.nan, np.nan])
    np.testing.assert_array_equal(y[~finite], reference(lin.eval(), z[~finite, None])[:, 0])


def test_nested_sequential_and_single_linear(tmp_path):
    fp.manual_seed(2)
    inner = nn.Sequential(nn.Linear(6, 6), nn.Tanh())
    model = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), inner, nn.Identity(), nn.Linear(6, 2))
    proto = fp.onnx.export(model, tmp_path / "m.onnx")
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer if "." in i.name}
    state = model.state_dict()
    assert sorted(weights) == sorted(state) == ["0.bias", "0.weight", "2.0.bias", "2.0.weight", "4.bias", "4.weight"]
    for k in state:
        np.testing.assert_array_equal(weights[k], state[k])
    x = inputs(np.float32, 4, 3)
    np.testing.assert_allclose(run_ort(tmp_path / "m.onnx", x), reference(model, x), **TOL[np.float32])

    lin = nn.Linear(3, 2, activation="sigmoid")
    proto = fp.onnx.export(lin, str(tmp_path / "l.onnx"))
    assert {i.name for i in proto.graph.initializer} == {"weight", "bias"}
    np.testing.assert_allclose(run_ort(tmp_path / "l.onnx", x), reference(lin, x), **TOL[np.float32])


def test_graph_signature(tmp_path):
    proto = fp.onnx.export(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)), tmp_path / "m.onnx")
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "x" and out.name == "y"
    dims = [(d.dim_param, d.dim_value) for d in inp.type.tensor_type.shape.dim]
    assert dims == [("batch", 0), ("", 3)]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    # runtimes older than the onnx package refuse newer IR versions
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(list(proto.opset_import))


def test_exported_weights_are_a_snapshot(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    fp.onnx.export(model, tmp_path / "m.onnx")
    x = inputs(np.float32, 2, 3)
    before = reference(model, x)
    model[0].weight.data += 1.0
    np.testing.assert_allclose(run_ort(tmp_path / "m.onnx", x), before, **TOL[np.float32])


class Custom(nn.Module):
    def forward(self, x):
        return x


class MyReLU(nn.ReLU):
    def forward(self, x):
        return x


@pytest.mark.parametrize("model, match", [
    (nn.Sequential(nn.Linear(3, 3), Custom()), r"module 1 \(Custom\)"),
    (nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.ReLU(), MyReLU())), r"module 1\.1 \(MyReLU\)"),
    (nn.Sequential(nn.Linear(3, 3), nn.MSELoss()), r"\(MSELoss\)"),
    (Custom(), "must be an nn.Sequential or nn.Linear, got Custom"),
    (nn.ReLU(), "must be an nn.Sequential or nn.Linear, got ReLU"),
    ("model", "got str"),
])
def test_unsupported_modules_raise_type_error(tmp_path, model, match):
    with pytest.raises(TypeError, match=match):
        fp.onnx.export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_bad_arguments(tmp_path):
    good = nn.Sequential(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="no Linear layer"):
        fp.onnx.export(nn.Sequential(nn.ReLU()), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="no Linear layer"):
        fp.onnx.export(nn.Sequential(), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"out_features=3 but the next Linear, 2, has in_features=4"):
        fp.onnx.export(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(4, 1)), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="one dtype"):
        fp.onnx.export(nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1, dtype=np.float64)), tmp_path / "m.onnx")
    for opset in (12, onnx.defs.onnx_opset_version() + 1):
        with pytest.raises(ValueError, match=f"opset must be between 13 and .*got {opset}"):
            fp.onnx.export(good, tmp_path / "m.onnx", opset=opset)
    for opset in (17.0, "17", True):
        with pytest.raises(TypeError, match="opset must be an int"):
            fp.onnx.export(good, tmp_path / "m.onnx", opset=opset)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
        fp.onnx.export(good, 3)
    with pytest.raises(TypeError):
        fp.onnx.export(good, tmp_path / "m.onnx", 17)  # opset is keyword-only
    assert not (tmp_path / "m.onnx").exists()


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ImportError, match=r"pip install fusedprop\[onnx\]"):
        fp.onnx.export(nn.Sequential(nn.Linear(3, 3)), tmp_path / "m.onnx")


def test_import_fusedprop_does_not_import_onnx():
    code = ("import sys, fusedprop; fusedprop.onnx.export; "
            "print('onnx' in sys.modules, 'onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
