#!/usr/bin/env bash
# ISA isolation guard: an AVX2 translation unit (AVX2_SOURCES in
# CMakeLists.txt, built with -mavx2 -mfma) must not emit a weak (COMDAT)
# definition, with VEX-encoded instructions, of an inline function or
# template instance that non-AVX2 code also defines: the linker keeps one
# copy of each, possibly the AVX2 one, and portable code would then execute
# AVX2 instructions on any CPU (SIGILL where AVX2 is missing). Likewise an
# AVX-512 translation unit (AVX512_SOURCES, -mavx512f ...) against both the
# baseline and the AVX2 objects: its copy of an AVX2 inline function may be
# EVEX-encoded (ZMM/opmask/xmm16-31), which an AVX2-only CPU cannot run.
#
# Builds _core with CMake in a temporary folder, then for every *_avx2*.o
# and *_avx512*.o lists its weak symbols (nm types W, V, u), disassembles
# those with VEX/EVEX instructions (objdump mnemonics starting with "v") and
# fails on any that some object of a narrower ISA defines too, printing them;
# also on an AVX2/AVX-512 object with a static initialiser (it would run at
# import, before the CPU check).
#
# Usage: tools/check_isa_isolation.sh [existing build dir to reuse]
# Needs: python with pybind11, cmake, ninja (pip install pybind11 cmake ninja),
# a C++ compiler and binutils (nm, objdump).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ge 1 ]; then
  build=$1
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  build="$work/build"
fi

python=$(command -v python || command -v python3)
log="$build.log"
mkdir -p "$build"
if ! { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
         -DSKBUILD_PROJECT_NAME=fusedprop -DSKBUILD_PROJECT_VERSION=0.0.0 \
         -Dpybind11_DIR="$("$python" -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$python" &&
       cmake --build "$build" --target _core -j 2; } >"$log" 2>&1; then
  cat "$log"
  echo "check_isa_isolation: the build failed" >&2
  exit 1
fi

"$python" - "$build" <<'PY'
import os, re, subprocess, sys

build = sys.argv[1]
objs = sorted(os.path.join(d, f) for d, _, fs in os.walk(build) for f in fs
              if f.endswith(".o") and "CMakeFiles" in d and "_core" in d)
avx512 = [o for o in objs if "_avx512" in os.path.basename(o)]
avx2 = [o for o in objs if "_avx2" in os.path.basename(o)]
base = [o for o in objs if o not in avx2 and o not in avx512]
if not avx2 or not base:  # (no AVX-512 objects when the compiler lacks the flags)
    sys.exit(f"check_isa_isolation: no objects found under {build} "
             f"(avx512: {len(avx512)}, avx2: {len(avx2)}, other: {len(base)})")

def weak(obj):
    out = subprocess.run(["nm", "--defined-only", obj], check=True, capture_output=True, text=True).stdout
    return {p[2] for p in (l.split(maxsplit=2) for l in out.splitlines()) if len(p) == 3 and p[1] in "WVu"}

def vex_functions(obj):
    """Symbols of obj whose disassembly has a mnemonic starting with 'v'."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj], check=True, capture_output=True,
                         text=True).stdout
    found, sym = set(), None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            sym = m.group(1)
            continue
        m = re.match(r"^\s+[0-9a-f]+:\s+(\S+)", line)
        if sym and m and m.group(1).startswith("v"):
            found.add(sym)
    return found

def weak_in(objects):
    found = {}
    for o in objects:
        for s in weak(o):
            found.setdefault(s, []).append(os.path.basename(o))
    return found

bad = []
# (wider objects, the narrower objects they must share no vector code with)
for wide, narrow in ((avx2, base), (avx512, base + avx2)):
    narrow_weak = weak_in(narrow)
    for o in wide:
        shared = weak(o) & narrow_weak.keys()
        for s in sorted(shared & vex_functions(o)):
            bad.append((os.path.basename(o), s, narrow_weak[s]))

# A dynamic initialiser in an ISA object (a kernel table that is not a
# constant expression) runs at import on every CPU, before any check.
for o in avx2 + avx512:
    sections = subprocess.run(["objdump", "-h", o], check=True, capture_output=True, text=True).stdout
    if ".init_array" in sections or ".ctors" in sections:
        bad.append((os.path.basename(o), "(static initialiser)", ["runs at load time, on any CPU"]))

names = {}
if bad:
    out = subprocess.run(["c++filt"], input="\n".join(s for _, s, _ in bad), capture_output=True, text=True).stdout
    names = dict(zip((s for _, s, _ in bad), out.splitlines()))
print(f"check_isa_isolation: {len(avx512)} AVX-512 objects, {len(avx2)} AVX2 objects, {len(base)} baseline objects")
for o, s, others in bad:
    print(f"  {o}: {names.get(s, s)}  [{s}] also weak in {', '.join(sorted(others))}")
if bad:
    sys.exit(f"check_isa_isolation: FAIL, {len(bad)} weak symbol(s) with vector code shared with objects of a narrower ISA")
print("check_isa_isolation: OK, no weak symbol with AVX2 or AVX-512 code is shared with code of a narrower ISA")
PY
