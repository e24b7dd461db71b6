#!/usr/bin/env bash
# Run benchmarks/gpu_benchmark.py on a GPU machine that may lack lmtk's pure-Python dependencies.
#
# Usage, from the repository root:  bash benchmarks/gpu_benchmark.sh [--tests] [extra gpu_benchmark.py options]
#
# --tests first runs the tests of the GPU-only paths (CUDA graphs, float16 training, cuDNN layouts; they
# skip on a CPU), at most TESTS_TIMEOUT seconds (default 150), into $OUT/tests.txt.
#
# CARRY (default work_dirs/gpu_carry) holds wheels/ (catalogue, kornia, kornia_rs, mmengine, mmcv-lite,
# addict, yapf, termcolor, platformdirs, decord for the machine's Python), the conformance fixture files
# (official_keys.json, official_buffers.pt, official_outputs.pt) and, optionally, data/: 256 px clips
# for timing the training data loader. Make it on a machine with an index (about 35 MB):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#       -d work_dirs/gpu_carry/wheels catalogue kornia kornia_rs mmengine mmcv-lite addict yapf termcolor platformdirs \
#       pytest pluggy iniconfig packaging pygments decord
#   cp ../shared/conformance/official_* work_dirs/gpu_carry/
#   python tools/prepare_dataset.py --input ../shared/data/vox/driving1.mp4 ../shared/data/vox/driving2.mp4 \
#       --output work_dirs/gpu_carry/data --split 1.0 --no-progress
# Results go to $OUT (or ./gpu_benchmark_out): gpu_benchmark.json and log.txt.
set -u
CARRY=${CARRY:-work_dirs/gpu_carry}
OUT_DIR=${OUT:-gpu_benchmark_out}
mkdir -p "$OUT_DIR"
run_tests=0
if [ "${1:-}" = "--tests" ]; then
    run_tests=1
    shift
fi

missing=$(python3 - <<'PY'
import importlib.util
names = {"catalogue": "catalogue", "kornia": "kornia", "mmengine": "mmengine", "mmcv": "mmcv-lite", "pytest": "pytest",
         "decord": "decord"}
print(" ".join(n for n in names if importlib.util.find_spec(n) is None))
PY
)
if [ -n "$missing" ]; then
    echo "installing from $CARRY/wheels (missing: $missing)"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/lmtk_site \
        "$CARRY"/wheels/*.whl || exit 1
    export PYTHONPATH=/tmp/lmtk_site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! python3 -c "import av" 2>/dev/null; then
    # PyAV only reads and writes video files, which the benchmark never does; an empty module lets
    # lmtk.apis import
    mkdir -p /tmp/lmtk_stubs/av
    echo '"""Placeholder for PyAV (not installed): video I/O is unavailable."""' > /tmp/lmtk_stubs/av/__init__.py
    export PYTHONPATH=/tmp/lmtk_stubs${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>/dev/null
if [ "$run_tests" = 1 ]; then
    PYTHONUNBUFFERED=1 timeout "${TESTS_TIMEOUT:-150}" python3 -m pytest -q -p no:cacheprovider \
        tests/test_fast_paths.py tests/models/test_components.py \
        -k "cuda or host_sync or (float16 and not bfloat16)" \
        2>&1 | tee "$OUT_DIR/tests.txt"
fi
set -o pipefail
data=()
if [ -d "$CARRY/data/train" ]; then
    data=(--data "$CARRY/data")
fi
PYTHONUNBUFFERED=1 python3 benchmarks/gpu_benchmark.py --out "$OUT_DIR" --conformance "$CARRY" ${data[@]+"${data[@]}"} "$@" 2>&1 \
    | tee "$OUT_DIR/log.txt"
