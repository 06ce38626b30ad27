"""``fp.onnx.export``: a fusedprop MLP as an ONNX model, to serve it anywhere.

The exported graph has one input ``"x"`` of shape ``("batch", in_features)``
(the batch dimension is dynamic) and one output ``"y"`` of shape
``("batch", out_features)``, both in the model's dtype (float32 or float64).
Each ``Linear`` is one ``Gemm(transB=1)`` whose weight and bias are
initializers named by their ``state_dict`` keys (``0.weight``, ``0.bias``).

Activations, chosen so that ONNX Runtime's CPU provider runs every one of
them in both dtypes (it has no float64 kernel for ``Erf``, ``Gelu`` or, from
opset 16 on, ``LeakyRelu``):

============  ===========================================================
identity      nothing
relu          ``Relu``
leaky_relu    float32: ``LeakyRelu(alpha=slope)``; float64:
              ``Where(z > 0, z, z * slope)`` (fusedprop's own definition)
sigmoid       ``Sigmoid``
tanh          ``Tanh``
gelu          float32: ``0.5 z (1 + Erf(z / sqrt 2))`` (the pattern ONNX
              Runtime fuses into one kernel), or the ``Gelu`` op from opset
              20; float64: ``0.5 z erfc(-z / sqrt 2)`` with erfc written in
              plain arithmetic (W. J. Cody's rational approximations, 1969:
              accurate to a few ulps over the whole line)
gelu_tanh     ``z * Sigmoid(2 sqrt(2/pi) (z + 0.044715 z^3))`` (equal to
              ``0.5 z (1 + tanh(...))`` without its cancellation for z < 0)
silu          ``z * Sigmoid(z)``
============  ===========================================================

float32 gelu through ``Erf`` behaves as PyTorch's float32 gelu: for z below
about -3, ``1 + erf`` cancels, so the relative error grows there while the
absolute error stays below ``1e-7 |z|``. fusedprop itself computes gelu
through erfc (in double for float32) and has no such loss.

``onnx`` is an optional dependency (``pip install fusedprop[onnx]``); it is
imported by :func:`export`, never by ``import fusedprop``.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .nn import activation as _act
from .nn.container import Sequential
from .nn.linear import Linear

__all__ = ["DEFAULT_OPSET", "INPUT_NAME", "MIN_OPSET", "OUTPUT_NAME", "export"]

DEFAULT_OPSET = 17  # ONNX Runtime 1.14+ and most other runtimes load it
MIN_OPSET = 13      # the opset of Gemm, Erf, Sigmoid and Tanh as used here
INPUT_NAME = "x"
OUTPUT_NAME = "y"


def _import_onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError("fusedprop.onnx.export needs the onnx package: pip install fusedprop[onnx] "
                          "(or pip install onnx)") from e
    return onnx


def export(model, path, *, opset: int = DEFAULT_OPSET):
    """Write ``model`` to ``path`` as an ONNX model and return the ``onnx.ModelProto``.

    ``model`` is an ``nn.Linear`` or an ``nn.Sequential`` (nested ones too) of
    ``Linear`` layers (with or without a fused ``activation=``) and activation
    modules (Identity, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, SiLU), all of one
    dtype. Other modules raise TypeError naming them. The graph's input is
    ``"x"``, ``(batch, in_features)`` with a dynamic batch, its output ``"y"``.
    ``opset`` is the ONNX opset to target, from 13 to the newest the installed
    ``onnx`` knows; the file passes ``onnx.checker.check_model``.
    """
    onnx = _import_onnx()
    opset = _check_opset(opset, onnx)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"onnx.export: path must be a str or os.PathLike, got {type(path).__name__}")
    steps = _steps(model)
    dtype, n_in, n_out = _signature(steps)

    g = _Graph(onnx, dtype, opset)
    h = INPUT_NAME
    for name, module in steps:
        if type(module) is Linear:
            h = g.gemm(h, name, module)
            h = g.activation(h, module.activation, module.negative_slope)
        else:
            h = g.activation(h, module.kernel_name, module.negative_slope)
    g.nodes.append(onnx.helper.make_node("Identity", [h], [OUTPUT_NAME]))

    from . import __version__
    elem = g.elem
    graph = onnx.helper.make_graph(
        g.nodes, "fusedprop",
        [onnx.helper.make_tensor_value_info(INPUT_NAME, elem, ["batch", n_in])],
        [onnx.helper.make_tensor_value_info(OUTPUT_NAME, elem, ["batch", n_out])],
        initializer=g.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="fusedprop",
                                   producer_version=__version__,
                                   doc_string=f"exported by fusedprop {__version__} from {type(model).__name__}")
    # The oldest IR version this opset allows: runtimes older than the onnx
    # package (e.g. ONNX Runtime) refuse IR versions newer than they know.
    proto.ir_version = onnx.helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, os.fspath(path))
    return proto


def _check_opset(opset, onnx) -> int:
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"onnx.export: opset must be an int, got {type(opset).__name__}")
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"onnx.export: opset must be between {MIN_OPSET} and {newest} (the newest the "
                         f"installed onnx {onnx.__version__} knows), got {opset}")
    return int(opset)


def _steps(model) -> list:
    """(name, module) for each Linear and activation module, nested Sequentials flattened."""
    act = _act
    # Exact types only: a subclass may override forward() with anything.
    supported = {Linear, act.Identity, act.ReLU, act.LeakyReLU, act.Sigmoid, act.Tanh, act.GELU, act.SiLU}

    def walk(m, prefix):
        if type(m) is Sequential:
            for name, child in m._modules.items():
                if child is not None:
                    yield from walk(child, f"{prefix}{name}.")
        elif type(m) in supported:
            yield prefix[:-1], m
        else:
            where = f"module {prefix[:-1]} " if prefix else ""
            raise TypeError(f"onnx.export: cannot export {where}({type(m).__name__}): only Linear, Sequential "
                            "and the activation modules (Identity, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, SiLU) "
                            "are supported")

    if type(model) not in (Sequential, Linear):
        raise TypeError(f"onnx.export: model must be an nn.Sequential or nn.Linear, got {type(model).__name__}")
    return [s for s in walk(model, "") if type(s[1]) is not act.Identity]


def _signature(steps: list) -> tuple:
    linears = [(n, m) for n, m in steps if type(m) is Linear]
    if not linears:
        raise ValueError("onnx.export: the model has no Linear layer, so its input width and dtype are unknown")
    dtype = linears[0][1].weight.data.dtype
    for (na, a), (nb, b) in zip(linears, linears[1:]):
        if b.weight.data.dtype != dtype:
            raise TypeError(f"onnx.export: every layer must have one dtype; layer {na or 'weight'} is {dtype}, "
                            f"layer {nb} is {b.weight.data.dtype}")
        if a.out_features != b.in_features:
            raise ValueError(f"onnx.export: layer {na} has out_features={a.out_features} but the next Linear, "
                             f"{nb}, has in_features={b.in_features}")
    return dtype, linears[0][1].in_features, linears[-1][1].out_features


class _Graph:
    """Nodes and initializers of the graph being built, with fresh names."""

    def __init__(self, onnx, dtype: np.dtype, opset: int) -> None:
        self.onnx, self.dtype, self.opset = onnx, np.dtype(dtype), opset
        self.elem = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes, self.initializers = [], []
        self._consts, self._count = {}, 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def op(self, op_type: str, *inputs: str, **attrs) -> str:
        out = self.fresh(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def const(self, value: float) -> str:
        """A scalar of the graph's dtype (one initializer per distinct value)."""
        value = self.dtype.type(value)
        key = value.tobytes()
        if key not in self._consts:
            name = self.fresh("c")
            self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
            self._consts[key] = name
        return self._consts[key]

    def gemm(self, h: str, name: str, linear) -> str:
        prefix = f"{name}." if name else ""
        w = self.onnx.numpy_helper.from_array(np.ascontiguousarray(linear.weight.data), prefix + "weight")
        self.initializers.append(w)
        inputs = [h, w.name]
        if linear.bias is not None:
            b = self.onnx.numpy_helper.from_array(np.ascontiguousarray(linear.bias.data), prefix + "bias")
            self.initializers.append(b)
            inputs.append(b.name)
        return self.op("Gemm", *inputs, transB=1)

    # ------------------------------------------------------------ activations
    def activation(self, z: str, name: str, negative_slope: float) -> str:
        f64 = self.dtype == np.float64
        if name == "identity":
            return z
        if name in ("relu", "sigmoid", "tanh"):
            return self.op({"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}[name], z)
        if name == "leaky_relu":
            if not f64:
                return self.op("LeakyRelu", z, alpha=float(negative_slope))
            positive = self.op("Greater", z, self.const(0.0))
            return self.op("Where", positive, z, self.op("Mul", z, self.const(negative_slope)))
        if name == "silu":
            return self.op("Mul", z, self.op("Sigmoid", z))
        if name == "gelu_tanh":
            cube = self.op("Mul", self.op("Mul", z, z), z)
            inner = self.op("Add", z, self.op("Mul", self.const(0.044715), cube))
            return self.op("Mul", z, self.op("Sigmoid", self.op("Mul", self.const(2 * math.sqrt(2 / math.pi)),
                                                                inner)))
        if name == "gelu":
            if f64:
                t = self.op("Mul", self.op("Neg", z), self.const(math.sqrt(0.5)))
                return self.op("Mul", self.op("Mul", self.const(0.5), z), self.erfc(t))
            if self.opset >= 20:
                return self.op("Gelu", z, approximate="none")
            e = self.op("Erf", self.op("Div", z, self.const(math.sqrt(2.0))))
            return self.op("Mul", self.op("Mul", z, self.op("Add", e, self.const(1.0))), self.const(0.5))
        raise AssertionError(f"unknown activation {name!r}")  # Linear validates its activation

    def poly(self, x: str, coefs) -> str:
        """Horner: coefs[0] x^n + ... + coefs[n]."""
        acc = self.const(coefs[0])
        for c in coefs[1:]:
            acc = self.op("Add", self.op("Mul", acc, x), self.const(c))
        return acc

    def erfc(self, x: str) -> str:
        """erfc(x) from Mul/Add/Div/Exp/Floor/Where (ONNX Runtime has no float64 Erf).

        Cody's three rational approximations of his CALERF routine: erf on
        |x| <= 0.46875, exp(x^2) erfc(x) on (0.46875, 4] and on (4, inf) in
        1/x^2; exp(-x^2) is split as exp(-s^2) exp(-(x-s)(x+s)) with s = x
        rounded down to 1/16, so x^2's rounding error is not multiplied by x^2.
        erfc(-y) = 2 - erfc(y). All branches are computed and Where picks one.
        """
        c = self.const
        y = self.op("Abs", x)
        # erfc(y) is 0 in double from y ~ 27.3 on; the clamp keeps Inf - Inf
        # out of the exponent split (erfc(+-Inf) comes out as 0 and 2).
        y = self.op("Min", y, c(40.0))
        ysq = self.op("Mul", y, y)
        # |x| <= 0.46875: erf(y) = y P(y^2) / Q(y^2)
        small = self.op("Div", self.op("Mul", y, self.poly(ysq, _CODY_A)), self.poly(ysq, _CODY_B))
        small = self.op("Sub", c(1.0), small)
        # (0.46875, 4]: exp(y^2) erfc(y) = P(y) / Q(y)
        mid = self.op("Div", self.poly(y, _CODY_C), self.poly(y, _CODY_D))
        # (4, inf): exp(y^2) erfc(y) = (1/sqrt(pi) - r P(r) / Q(r)) / y, r = 1/y^2
        r = self.op("Div", c(1.0), ysq)
        tail = self.op("Div", self.op("Mul", r, self.poly(r, _CODY_P)), self.poly(r, _CODY_Q))
        tail = self.op("Div", self.op("Sub", c(1 / math.sqrt(math.pi)), tail), y)
        scaled = self.op("Where", self.op("Greater", y, c(4.0)), tail, mid)
        s = self.op("Div", self.op("Floor", self.op("Mul", y, c(16.0))), c(16.0))
        d = self.op("Mul", self.op("Sub", y, s), self.op("Add", y, s))
        decay = self.op("Mul", self.op("Exp", self.op("Neg", self.op("Mul", s, s))),
                        self.op("Exp", self.op("Neg", d)))
        large = self.op("Mul", decay, scaled)
        pos = self.op("Where", self.op("Greater", y, c(0.46875)), large, small)
        signed = self.op("Where", self.op("Less", x, c(0.0)), self.op("Sub", c(2.0), pos), pos)
        # Min and the comparisons need not propagate NaN: do it here.
        return self.op("Where", self.op("IsNaN", x), x, signed)


# W. J. Cody, "Rational Chebyshev approximations for the error function",
# Math. Comp. 23 (1969) 631-637; the coefficients of his CALERF (netlib
# specfun), highest power first for Horner. _CODY_B, _CODY_D, _CODY_Q are
# monic.
_CODY_A = (1.85777706184603153e-1, 3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
           3.20937758913846947e03)
_CODY_B = (1.0, 2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_CODY_C = (2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03,
           1.23033935479799725e03)
_CODY_D = (1.0, 1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
           3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_CODY_P = (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4)
_CODY_Q = (1.0, 2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
           2.33520497626869185e-3)
