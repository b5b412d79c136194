#!/usr/bin/env bash
# A CUDA 13.0 build toolkit for `cargo build --features cuda` on a machine without a system CUDA
# install (a CI runner, a laptop, a CPU box that builds binaries for a GPU box), assembled from
# NVIDIA's PyPI wheels. Run by hand:
#
#   scripts/cuda_toolkit_from_pypi.sh /opt/cuda            # nvcc, headers, cuBLAS/cuRAND/NVRTC
#   scripts/cuda_toolkit_from_pypi.sh /opt/cuda --stub-gguf # also stub candle's GGUF/MoE kernels
#   export CUDA_HOME=/opt/cuda PATH=/opt/cuda/bin:$PATH CUDA_COMPUTE_CAP=90   # 90 = H100/H200
#   cargo build --release -p mathforge --features cuda
#
# What it does, and why:
# - downloads the wheels nvidia-cuda-{nvcc,runtime,nvrtc,crt,cccl}, nvidia-nvvm, nvidia-cublas
#   (13.0) and nvidia-curand (10.4.0, the CUDA 13 release) and unpacks their `nvidia/cu13` trees
#   into PREFIX (bin/nvcc, nvvm/bin/cicc, include/, lib/);
# - adds the unversioned `lib*.so` links the linker looks for (wheels ship only `.so.13`);
# - writes a link-time stub `lib/libcuda.so` (soname libcuda.so.1) defining every `cu*` symbol of
#   cuda.h: cudarc links the driver API directly, the driver is not on PyPI, and at run time the
#   real libcuda.so.1 of the GPU machine's driver is loaded instead (the stub is never shipped).
# - `--stub-gguf`: candle-kernels also compiles ~15 GGUF-quantized matmul/MoE kernels into a static
#   library, which takes most of an hour of nvcc on a 2-core machine. mathforge never calls them
#   (no quantized weights), so this option puts a wrapper in front of nvcc that builds those files
#   as host stubs that abort with a message if ever called, and the quantized PTX module as an empty
#   one. The resulting binary runs every mathforge path on the GPU; do not use it for candle's
#   quantized models. Without the option everything is compiled for real.
#
# At run time the binary needs libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13
# (a CUDA 13 toolkit, or the same wheels, on LD_LIBRARY_PATH) and an NVIDIA driver >= 580.
set -euo pipefail
PREFIX=${1:?usage: cuda_toolkit_from_pypi.sh PREFIX [--stub-gguf]}
STUB_GGUF=${2:-}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for spec in "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-nvrtc==13.0.*" \
            "nvidia-cuda-crt==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-nvvm==13.0.*" \
            "nvidia-cublas==13.0.*" "nvidia-curand==10.4.0.35"; do
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$WORK/whl" "$spec"
done
mkdir -p "$WORK/x"
for w in "$WORK"/whl/*.whl; do unzip -q -o "$w" -d "$WORK/x"; done
mkdir -p "$PREFIX"
cp -r "$WORK/x/nvidia/cu13/." "$PREFIX/"
cd "$PREFIX/lib"
for l in cublas cublasLt cudart nvrtc; do ln -sf "lib$l.so.13" "lib$l.so"; done
ln -sf libcurand.so.10 libcurand.so
grep -ohE '\bcu[A-Z][A-Za-z0-9_]*\b' "$PREFIX/include/cuda.h" | sort -u \
  | awk '{print "void " $1 "(void) {}"}' >"$WORK/cuda_stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$PREFIX/lib/libcuda.so" "$WORK/cuda_stub.c"

if [ "$STUB_GGUF" = "--stub-gguf" ]; then
  KERNELS=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/candle-kernels-0.11.* 2>/dev/null | tail -n 1)
  [ -n "$KERNELS" ] || { echo "candle-kernels sources not found: run 'cargo fetch' first" >&2; exit 1; }
  mkdir -p "$PREFIX/stubs"
  {
    echo '#include <stdio.h>'
    echo '#include <stdlib.h>'
    grep -oE 'pub fn [A-Za-z0-9_]+' "$KERNELS/src/ffi.rs" | awk '{print $3}' | sort -u | while read -r n; do
      echo "void $n(void) { fputs(\"candle GGUF/MoE kernel $n was stubbed out of this build\\n\", stderr); abort(); }"
    done
  } >"$PREFIX/stubs/gguf_stub.c"
  [ -f "$PREFIX/bin/nvcc.real" ] || mv "$PREFIX/bin/nvcc" "$PREFIX/bin/nvcc.real"
  cat >"$PREFIX/bin/nvcc" <<EOF
#!/usr/bin/env bash
# Written by scripts/cuda_toolkit_from_pypi.sh --stub-gguf (see there).
src=""; out=""; outdir=""; prev=""
for a in "\$@"; do
  case "\$a" in *.cu) src="\$a";; esac
  [ "\$prev" = "-o" ] && out="\$a"
  [ "\$prev" = "--output-directory" ] && outdir="\$a"
  prev="\$a"
done
case "\$src" in
  */moe/*|*/mmq_gguf/*|*mmvq_gguf.cu)
    if [ -n "\$out" ]; then exec cc -c -fPIC "$PREFIX/stubs/gguf_stub.c" -o "\$out"; fi ;;
  *quantized.cu)
    if [ -n "\$outdir" ]; then printf '.version 8.0\n.target sm_90\n.address_size 64\n' >"\$outdir/quantized.ptx"; exit 0; fi ;;
esac
exec "$PREFIX/bin/nvcc.real" "\$@"
EOF
  chmod +x "$PREFIX/bin/nvcc"
fi
"$PREFIX/bin/nvcc" --version | tail -n 1
echo "toolkit ready in $PREFIX: export CUDA_HOME=$PREFIX PATH=$PREFIX/bin:\$PATH CUDA_COMPUTE_CAP=90"
