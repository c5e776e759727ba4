#!/usr/bin/env bash
# Builds the agent image from deploy/Containerfile with podman, on a machine that reaches no image registry: both
# bases are made from Debian packages (mmdebstrap → podman import) with the Containerfile's package lists already
# installed. Each base is a podman image tagged with a hash of everything that went into it, so it is made once per
# machine (cold: a few minutes) and reused by every later build, in any clone; podman's layer cache does the rest.
#
#   scripts/build-image.sh [--tag IMAGE] [--refresh-bases]
#     --tag IMAGE       default localhost/quietflame:<package.json version>
#     --refresh-bases   make the bases again (newer Debian packages, e.g. security updates)
#
# Needs root (or sudo), podman, runc and mmdebstrap (scripts/install-system-deps.sh installs them), the Debian
# mirror this machine's apt uses, and the npm registry. Prints the image's size at the end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
containerfile="$root/deploy/Containerfile"
suite=trixie # Node 20 (Debian's nodejs); bookworm's 18 is below package.json's engines
export CONTAINERS_CONF="$root/scripts/containers.conf"

die() { echo "build-image: $*" >&2; exit 1; }
say() { echo "build-image: $*" >&2; }

tag=""
refresh=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) [ $# -ge 2 ] || die "--tag needs an image name"; tag="$2"; shift 2 ;;
    --refresh-bases) refresh=1; shift ;;
    *) die "unknown option $1 (usage: scripts/build-image.sh [--tag IMAGE] [--refresh-bases])" ;;
  esac
done
[ -n "$tag" ] || tag="localhost/quietflame:$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/package.json")"

[ "$(id -u)" -eq 0 ] || die "needs root (podman build with runc, mmdebstrap): run it with sudo"
for tool in podman runc mmdebstrap; do
  command -v "$tool" >/dev/null || die "'$tool' not found: run scripts/install-system-deps.sh"
done

# The Debian mirrors this machine's apt uses (never a host written here): deb822 .sources or one-line lists.
apt_uris() {
  {
    awk 'BEGIN{RS=""} /(^|\n)Types:[^\n]*deb([ \n]|$)/ {
           u=""; s="";
           n=split($0, l, "\n");
           for (i=1;i<=n;i++) { if (l[i] ~ /^URIs:/) u=l[i]; if (l[i] ~ /^Suites:/) s=l[i] }
           sub(/^URIs:[ \t]*/, "", u); sub(/^Suites:[ \t]*/, "", s); print u, s }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
    sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) \([^ ]*\) .*/\2 \3/p' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
  } | awk '{ for (i=2;i<=NF;i++) print $1, $i }'
}
uris="$(apt_uris)"
mirror="${QF_DEBIAN_MIRROR:-$(awk '$2 !~ /-security$/ { print $1 }' <<<"$uris" | head -n1)}"
security="${QF_DEBIAN_SECURITY_MIRROR:-$(awk '$2 ~ /-security$/ { print $1 }' <<<"$uris" | head -n1)}"
[ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list{,.d}: set QF_DEBIAN_MIRROR"
[ -n "$security" ] || security="$mirror-security"

packages() {
  local line
  line="$(sed -n "s/^ARG $1=\"\(.*\)\"$/\1/p" "$containerfile")"
  [ -n "$line" ] || die "$containerfile has no ARG $1=\"…\" line"
  echo "$line"
}

# make_base NAME VARIANT PACKAGES: prints the image of a base holding PACKAGES, made now unless cached.
# runtime: mmdebstrap's "essential" variant (no apt: the runtime installs nothing) without docs, man pages, locales.
make_base() {
  local name="$1" variant="$2" pkgs="$3" key image tar started
  local opts=(--variant="$variant" --include="${pkgs// /,}"
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/info/*')
  local sources=("deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security $suite-security main")
  key="$(printf '%s\n' "$suite" "${opts[@]}" "${sources[@]}" | sha256sum | cut -c1-16)"
  image="localhost/quietflame-$name-base:$key"
  if [ "$refresh" -eq 0 ] && podman image exists "$image"; then
    say "$name base: $image (cached)"
    echo "$image"
    return
  fi
  started=$SECONDS
  tar="$(mktemp --suffix=.tar /var/tmp/quietflame-base.XXXXXX)"
  # shellcheck disable=SC2064
  trap "rm -f '$tar'" EXIT
  say "$name base: mmdebstrap $suite ($pkgs)"
  mmdebstrap --quiet "${opts[@]}" "$suite" "$tar" "${sources[@]}" >&2 || die "mmdebstrap $suite failed (mirror $mirror)"
  podman import --quiet --change 'CMD ["/bin/bash"]' "$tar" "$image" >/dev/null
  rm -f "$tar"
  trap - EXIT
  # Older bases of this name (other inputs) would only take disk space.
  podman images --format '{{.Repository}}:{{.Tag}}' "localhost/quietflame-$name-base" | grep -vx "$image" | xargs -r podman rmi --force >/dev/null 2>&1 || true
  say "$name base: $image made in $((SECONDS - started)) s"
  echo "$image"
}

started=$SECONDS
build_base="$(make_base build apt "$(packages BUILD_PACKAGES)")"
runtime_base="$(make_base runtime essential "$(packages RUNTIME_PACKAGES)")"

# Inside build containers TLS to the npm registry needs the CAs this machine trusts (a proxy may re-sign), and the
# host's npm cache saves downloading what `npm ci` on the host already fetched.
ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
volumes=()
build_args=(--build-arg "BUILD_BASE=$build_base" --build-arg "RUNTIME_BASE=$runtime_base")
if [ -s "$ca" ]; then
  volumes+=(--volume "$ca:/run/host-ca.crt:ro")
  build_args+=(--build-arg NODE_EXTRA_CA_CERTS=/run/host-ca.crt)
fi
npm_cache="$(npm config get cache 2>/dev/null || true)"
if [ -n "$npm_cache" ]; then
  mkdir -p "$npm_cache"
  volumes+=(--volume "$npm_cache:/root/.npm")
fi
[ -r /sys/kernel/btf/vmlinux ] || die "/sys/kernel/btf/vmlinux missing: the BPF objects need a kernel BTF at build time (README, \"Deploy\": a builder without it)"

say "podman build $tag"
build_started=$SECONDS
podman build --runtime runc --layers --pull=never -f "$containerfile" "${build_args[@]}" "${volumes[@]}" -t "$tag" "$root" >&2
size="$(podman image inspect --format '{{.Size}}' "$tag")"
say "podman build: $((SECONDS - build_started)) s; all: $((SECONDS - started)) s"
say "$tag: $((size / 1048576)) MiB"
echo "$tag"
