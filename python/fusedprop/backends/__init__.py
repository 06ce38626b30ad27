"""The backend registry: which implementation runs the functional API.

Three backends implement the same functions (see ``numpy_backend`` for the
contract): ``cpp`` (the compiled core), ``numba`` (the same algorithms under
``@njit``) and ``numpy`` (the plain reference and test oracle). One is chosen
at import: ``FUSEDPROP_BACKEND``, else ``cpp`` if ``fusedprop._core`` loads,
else ``numba`` if Numba is installed, else ``numpy``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import types
import warnings
from typing import Iterator

BACKENDS = ("cpp", "numba", "numpy")

_core = None
_core_error: str | None = None
try:
    from .. import _core  # type: ignore[no-redef]
except ImportError as exc:  # the wheel was built without it, or it failed to load
    _core_error = f"{type(exc).__name__}: {exc}"

_loaded: dict[str, types.ModuleType] = {}
_listeners: list = []

# The module that implements the functional API right now. Hot paths read
# this attribute directly (``backends.current``).
current: types.ModuleType


def core_module():
    """``fusedprop._core``, or None where it did not load."""
    return _core


def core_import_error() -> str | None:
    """Why ``fusedprop._core`` did not load (None if it did)."""
    return _core_error


def _numba_installed() -> bool:
    # find_spec, not import: `import fusedprop` must stay light.
    return importlib.util.find_spec("numba") is not None


def available_backends() -> list[str]:
    """The backends that can run here, fastest first."""
    names = []
    if _core is not None:
        names.append("cpp")
    if _numba_installed():
        names.append("numba")
    names.append("numpy")
    return names


def _load(name: str) -> types.ModuleType:
    if name not in _loaded:
        _loaded[name] = importlib.import_module(f"{__name__}.{name}_backend")
    return _loaded[name]


def _check_name(name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a str, got {type(name).__name__}")
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: expected one of {', '.join(BACKENDS)}")
    if name not in available_backends():
        why = {
            "cpp": f"fusedprop._core did not load ({_core_error})",
            "numba": "Numba is not installed (pip install numba)",
        }[name]
        raise ValueError(f"backend {name!r} is not available here: {why}")
    return name


def get_backend() -> str:
    """The name of the active backend: "cpp", "numba" or "numpy"."""
    return current.NAME


def set_backend(name: str) -> None:
    """Make ``name`` the active backend for every later call."""
    global current
    current = _load(_check_name(name))
    for listener in _listeners:
        listener(current)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Run the ``with`` block on backend ``name``, then restore the previous one."""
    previous = get_backend()
    set_backend(name)
    try:
        yield name
    finally:
        set_backend(previous)


def on_backend_change(listener) -> None:
    """Call ``listener(module)`` whenever the active backend changes."""
    _listeners.append(listener)


def notify_num_threads(n: int) -> None:
    """Tell the loaded backends that ``set_num_threads(n)`` was called."""
    for module in _loaded.values():
        hook = getattr(module, "set_num_threads", None)
        if hook is not None:
            hook(n)


def _choose_at_import() -> str:
    requested = os.environ.get("FUSEDPROP_BACKEND", "").strip()
    if requested:
        try:
            return _check_name(requested)
        except ValueError as exc:
            raise ImportError(f"FUSEDPROP_BACKEND={requested!r}: {exc}") from None
    if _core is not None:
        return "cpp"
    fallback = "numba" if _numba_installed() else "numpy"
    warnings.warn(
        f"fusedprop: the compiled core did not load ({_core_error}); using the {fallback} backend, "
        "which is slower. Reinstall from a wheel, or build from source with a C++17 compiler: "
        "pip install --force-reinstall --no-binary fusedprop fusedprop",
        RuntimeWarning,
        stacklevel=3,
    )
    return fallback


current = _load(_choose_at_import())
