#!/usr/bin/env bash
# Build fusedprop._core with AddressSanitizer + UndefinedBehaviorSanitizer and
# run the tests that reach every C++ entry point against it.
#
# Usage: tools/sanitize.sh [extra pytest args]
# Everything happens in a temporary venv and build folder: no fusedprop
# install of yours is touched, and none of yours can shadow the sanitized one.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
python -m pip install -q "pybind11>=2.12" "cmake>=3.18" ninja numpy pytest hypothesis "safetensors>=0.4"
cmake -S . -B "$work/build" -G Ninja \
  -DFUSEDPROP_SANITIZE=ON \
  -DSKBUILD_PROJECT_NAME=fusedprop -DSKBUILD_PROJECT_VERSION=0.0.0 \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v python)" >/dev/null
cmake --build "$work/build" -j 2

cp -r python/fusedprop "$work/fusedprop"
# A _core*.so in the worktree may be a symlink to another build: copying onto
# it would overwrite that build's module with the sanitized one.
rm -f "$work"/fusedprop/_core*.so
cp "$work"/build/_core*.so "$work/fusedprop/"

# Python itself is not instrumented: preload the runtime, and leave leak
# checking off (the interpreter keeps its allocations alive at exit); a huge
# allocation returns NULL (NumPy raises MemoryError) instead of aborting, as the
# overflow tests expect.
# libstdc++ is preloaded too: ASan intercepts __cxa_throw when it starts, and
# python does not link libstdc++, so without it every C++ exception aborts.
export LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONPATH="$work"
export FUSEDPROP_BACKEND=cpp

python - <<'PY'
import fusedprop, os
assert os.path.dirname(fusedprop.__file__) == os.path.join(os.environ["PYTHONPATH"], "fusedprop"), fusedprop.__file__
print("sanitized build:", fusedprop.__file__, fusedprop.cpu_info()["isa"])
PY
# The cpp-backend half of the suite reaches every binding; torch is left out
# (its own allocator and JIT confuse ASan in a non-instrumented interpreter),
# and so is the RSS test: ASan keeps freed memory in quarantine (256 MB), so
# the process grows by what the calls free until that fills; the plain CI
# run checks RSS.
python -m pytest tests -p no:cacheprovider -q -x \
  -k "not numba and not numpy and not torch and not memory_is_stable" "$@"
