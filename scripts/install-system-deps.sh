#!/usr/bin/env bash
# Installs the system packages quietflame's native build, BPF build and tests need
# (fresh Debian bookworm, as root). Idempotent: does nothing when all are present.
set -euo pipefail

PACKAGES=(
  # BPF objects: clang -target bpf, llvm-strip, bpftool (vmlinux.h, tests), libbpf headers
  clang llvm libbpf-dev bpftool
  # N-API addon: node-gyp needs python3, make and a C++ compiler; links -lbpf -lelf -lz
  libelf-dev zlib1g-dev pkg-config make g++ python3
  # tools the tests and people use next to the agent
  linux-perf bpftrace util-linux procps prometheus
  # oracles in the tests: gdb (native symbols), binutils (nm, readelf), gcc + libc6-dev (cgo fixtures); libc6-dbg
  # (libc's separate debug file: symbols from two files)
  gdb binutils gcc libc6-dev libc6-dbg
  # the image (scripts/build-image.sh) and its tests: podman with runc, bases from Debian packages, certificates,
  # manifests rendered offline (kubectl kustomize)
  podman runc mmdebstrap openssl
  # the page's tests: a real headless browser (driven by npm playwright-core)
  chromium
)
# Debian's kubectl, unless a kubectl from another package is there already (both would own /usr/bin/kubectl).
command -v kubectl >/dev/null || PACKAGES+=(kubernetes-client)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps.sh: must run as root (apt-get install)" >&2
  exit 1
fi

# Node.js ≥ 20 (package.json's engines): Debian's nodejs when it is new enough (trixie: 20.x); bookworm's is 18.
node_major() { node --version 2>/dev/null | sed -n 's/^v\([0-9]*\)\..*/\1/p'; }
if [ "$(node_major || true)" = "" ] || [ "$(node_major)" -lt 20 ]; then
  apt-get update -q
  candidate=$(apt-cache policy nodejs | sed -n 's/^ *Candidate: \([0-9]*\)\..*/\1/p')
  if [ "${candidate:-0}" -ge 20 ]; then
    # Debian's npm is a package of its own; NodeSource's nodejs brings npm and conflicts with it.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs
    command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm
  else
    echo "install-system-deps.sh: quietflame needs Node.js 20 or later; found '$(node --version 2>/dev/null || echo none)'," \
      "and this Debian's nodejs is ${candidate:-absent}: install Node.js 20+ (Debian trixie, or https://deb.nodesource.com) and run this again" >&2
    exit 1
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-system-deps.sh: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-system-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
