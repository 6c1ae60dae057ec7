#!/usr/bin/env bash
# Builds hark with candle's CUDA backend (`--features cuda`, for `hark train separation
# --device cuda`) on a machine that has no CUDA toolkit and no GPU, for running on one that has
# a GPU:
#   scripts/build-cuda.sh            → target/cuda/release/hark
# 1. fetches NVIDIA's CUDA 13.0 compiler, headers and the libraries candle links (cuBLAS,
#    cuRAND, NVRTC, the runtime) as pinned PyPI wheels (sha256-checked) into .cache/cuda-13;
# 2. where no driver is installed, writes a link-time stand-in for libcuda.so.1 (the driver's
#    functions candle calls, empty): the real driver is loaded on the GPU machine;
# 3. builds for compute capability $CUDA_COMPUTE_CAP (default 90: H100/H200).
# On the GPU machine the binary needs the CUDA 13 libraries on LD_LIBRARY_PATH (PyTorch's
# nvidia/cu13/lib has them) and an NVIDIA driver for CUDA 13.
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA=.cache/cuda-13
WHEELS=.cache/cuda-wheels
PINS="
nvidia-cuda-nvcc==13.0.88 56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03
nvidia-cuda-runtime==13.0.96 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
nvidia-cuda-crt==13.0.88 2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4
nvidia-nvvm==13.0.88 c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0
nvidia-cuda-cccl==13.0.85 e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649
nvidia-cuda-nvrtc==13.0.88 ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575
nvidia-curand==10.4.5.25 22bb226a857e5888fe6b54ae465fc4371296bcff13a35f79e19691bcf454f529
nvidia-cublas==13.10.0.20 dcc6d63884c53d07e267ce7e6feac17b2538cebaafec5db865736c3e28e4dc84
"
if [ ! -x "$CUDA/bin/nvcc" ]; then
    mkdir -p "$WHEELS" "$CUDA.part"
    echo "$PINS" | while read -r pin sha; do
        [ -n "$pin" ] || continue
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
            --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2010_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" "$pin"
        wheel=$(ls "$WHEELS"/"$(echo "${pin%%==*}" | tr - _)"-"${pin##*==}"-*.whl)
        echo "$sha  $wheel" | sha256sum -c --quiet
        python3 -m zipfile -e "$wheel" "$CUDA.part"
    done
    rm -rf "$CUDA" && mv "$CUDA.part/nvidia/cu13" "$CUDA" && rm -rf "$CUDA.part"
    chmod +x "$CUDA"/bin/* "$CUDA"/nvvm/bin/*
    (cd "$CUDA/lib" && for l in nvrtc cublas cublasLt cudart; do ln -sf "lib$l.so.13" "lib$l.so"; done && ln -sf libcurand.so.10 libcurand.so)
fi
export PATH="$PWD/$CUDA/bin:$PATH" CUDA_ROOT="$PWD/$CUDA" CUDA_PATH="$PWD/$CUDA"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}" CARGO_TARGET_DIR="$PWD/target/cuda"
build() { cargo build --release --features cuda --bin hark; }
if ! ldconfig -p | grep -q 'libcuda.so.1 ' && [ ! -e "$CUDA/lib/libcuda.so" ]; then
    # Compile everything first (the link fails without libcuda), then stand in for the driver
    # with every cu* function the compiled code calls.
    build 2>/dev/null || true
    for f in "$CARGO_TARGET_DIR"/release/deps/lib{cudarc,candle_core,candle_nn,candle_kernels}-*.rlib \
             "$CARGO_TARGET_DIR"/release/build/candle-kernels-*/out/*.a; do
        nm -u "$f" 2>/dev/null || true
    done | awk '{print $NF}' | grep -E '^cu[A-Z]' | sort -u | awk '{print "void " $1 "(void) {}"}' > "$CUDA/libcuda-stub.c"
    gcc -shared -o "$CUDA/lib/libcuda.so" -Wl,-soname,libcuda.so.1 "$CUDA/libcuda-stub.c"
fi
build
echo "built target/cuda/release/hark (CUDA 13, compute capability $CUDA_COMPUTE_CAP)"
