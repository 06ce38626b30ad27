"""The standard suite: every case of every group, for a given size (full, quick, smoke)."""

from __future__ import annotations

from .common import ACTIVATIONS, GROUPS, OPTIMIZERS, Sizes
from .inference import inference_case
from .kernels import gemm_case, linear_fwd_bwd_case, linear_fwd_case, optim_case
from .tabular import tabular_case
from .training import digits_case, train_step_case


def case_builders(group: str, sizes: Sizes) -> list:
    """[(label hint, zero-argument builder)]: cases are built lazily (they allocate)."""
    if group == "gemm":
        out = []
        for n in sizes.square:
            for dtype in ("float32", "float64"):
                out.append(lambda n=n, dtype=dtype: gemm_case(n, n, n, dtype))
        for batch, n_in, n_out in sizes.layer_shapes:
            out.append(lambda b=batch, i=n_in, o=n_out: gemm_case(b, i, o, "float32", layer=True))
        return out
    if group in ("linear_fwd", "linear_fwd_bwd"):
        make = linear_fwd_case if group == "linear_fwd" else linear_fwd_bwd_case
        one_row = [lambda s=shape: make(*s, "relu") for shape in sizes.one_row] if group == "linear_fwd" else []
        return one_row + [lambda s=shape, a=a: make(*s, a) for shape in sizes.layer_shapes for a in ACTIVATIONS]
    if group == "optim_update":
        return [lambda k=kind: optim_case(k, sizes.optim_shape) for kind in OPTIMIZERS]
    if group == "train_step":
        return [lambda b=batch, s=arch, k=kind: train_step_case(b, s, k)
                for batch, arch in sizes.train_configs for kind in OPTIMIZERS] + \
            [lambda b=batch, s=arch, q=p: tabular_case(b, s, q) for batch, arch, p in sizes.tabular]
    if group == "inference":
        return [lambda b=batch, s=net: inference_case(b, s) for batch, net in sizes.inference]
    if group == "digits":
        return [lambda: digits_case(sizes.digits_epochs, sizes.digits_subset)]
    raise ValueError(f"unknown group {group!r}; expected one of {', '.join(GROUPS)}")
