#!/usr/bin/env bash
# Compiles every bpf/*.bpf.c into build/bpf/NAME.bpf.o (CO-RE, BTF kept, DWARF stripped).
# vmlinux.h is generated from the running kernel's BTF into build/bpf/ (never committed).
# Runs from `node-gyp rebuild` (binding.gyp action, so `npm ci` builds it) and from `npm run build:bpf`.
#
# Environment: CLANG (default clang), BPFTOOL (default bpftool), LLVM_STRIP (default llvm-strip),
#              VMLINUX_BTF (default /sys/kernel/btf/vmlinux), BPF_OUT (default build/bpf).
set -euo pipefail

stamp=0
[ "${1:-}" = "--stamp" ] && stamp=1   # binding.gyp's action: also touch build/bpf/.stamp

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/bpf"
out="${BPF_OUT:-$root/build/bpf}"
clang="${CLANG:-clang}"
bpftool="${BPFTOOL:-bpftool}"
strip="${LLVM_STRIP:-llvm-strip}"
btf="${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}"

die() { echo "build-bpf: $*" >&2; exit 1; }

for tool in "$clang" "$bpftool"; do
  command -v "$tool" >/dev/null || die "'$tool' not found; run 'sudo scripts/install-system-deps.sh' (needs clang, llvm, bpftool, libbpf-dev)"
done
[ -r "$btf" ] || die "$btf not readable: the kernel needs CONFIG_DEBUG_INFO_BTF=y (or set VMLINUX_BTF to a BTF file)"
[ -r /usr/include/bpf/bpf_helpers.h ] || die "/usr/include/bpf/bpf_helpers.h missing; install libbpf-dev"

case "$(uname -m)" in
  x86_64) arch=x86 ;;
  aarch64) arch=arm64 ;;
  s390x) arch=s390 ;;
  ppc64le) arch=powerpc ;;
  riscv64) arch=riscv ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac

mkdir -p "$out"

vmlinux="$out/vmlinux.h"
if [ ! -s "$vmlinux" ] || [ "$btf" -nt "$vmlinux" ]; then
  "$bpftool" btf dump file "$btf" format c > "$vmlinux.tmp" || die "bpftool btf dump file $btf failed"
  mv "$vmlinux.tmp" "$vmlinux"
  echo "build-bpf: generated $vmlinux"
fi

shopt -s nullglob
sources=("$src"/*.bpf.c)
[ "${#sources[@]}" -gt 0 ] || die "no $src/*.bpf.c files"
headers=("$src"/*.h)

for c in "${sources[@]}"; do
  name="$(basename "$c" .c)"           # selftest.bpf
  obj="$out/$name.o"
  stale=0
  if [ ! -s "$obj" ] || [ "$c" -nt "$obj" ] || [ "$vmlinux" -nt "$obj" ] || [ "$0" -nt "$obj" ]; then
    stale=1
  else
    for h in "${headers[@]}"; do [ "$h" -nt "$obj" ] && stale=1 && break; done
  fi
  [ "$stale" -eq 1 ] || continue
  "$clang" -g -O2 -target bpf -D__TARGET_ARCH_"$arch" \
    -Wall -Werror -Wno-unused-function \
    -I"$out" -I"$src" -c "$c" -o "$obj.tmp"
  if command -v "$strip" >/dev/null; then
    "$strip" -g "$obj.tmp"   # drop DWARF, keep .BTF/.BTF.ext (CO-RE needs them)
  fi
  mv "$obj.tmp" "$obj"
  echo "build-bpf: $c -> $obj"
done

[ "$stamp" -eq 1 ] && touch "$out/.stamp"
exit 0
