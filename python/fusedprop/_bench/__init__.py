"""The benchmark suite behind ``python -m fusedprop.bench`` and ``bench/``: cases
(common, kernels, training, cases), the interleaved runner, the report."""
