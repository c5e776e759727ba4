#!/usr/bin/env bash
# Installs the real Go toolchains quietflame's tests build their fixtures with, each as a runnable GOROOT:
#
#   <repo>/.toolchains/go1.15   Debian bullseye            golang-1.15-go + golang-1.15-src
#   <repo>/.toolchains/go1.19   Debian bookworm            golang-1.19-go + golang-1.19-src
#   <repo>/.toolchains/go1.21   Debian bookworm-backports  golang-1.21-go + golang-1.21-src
#   <repo>/.toolchains/go1.22   Debian bookworm-backports  (same)
#   <repo>/.toolchains/go1.23   Debian bookworm-backports  (same)
#   <repo>/.toolchains/go1.26   Debian unstable            (same; falls back to the newest golang-1.2x there)
#
# Run as root on Debian bookworm (CI runs it on a fresh machine). Idempotent: a toolchain whose `bin/go version`
# already answers is skipped, so a second run downloads nothing.
#
# How (the project's rule): the packages are never installed with apt. They are fetched with `apt-get download`
# and unpacked with `dpkg -x` under .toolchains/.pkgroot/go1.NN/. Suites the machine's apt sources already list
# (bookworm) are fetched through the machine's apt; the others through a private sources list with its own lists
# and cache directories (so the machine's apt state is untouched). The mirror is read from the machine's apt
# sources, never hard-coded; QUIETFLAME_DEBIAN_URI overrides it. Release files are verified with the machine's
# /usr/share/keyrings/debian-archive-keyring.gpg (bullseye, bookworm-backports and unstable all verify with it).
#
# Debian's packages put GOROOT at usr/lib/go-1.NN (its src/, api/, pkg/include are relative symlinks into
# usr/share/go-1.NN, shipped by the -src package); .toolchains/go1.NN is a relative symlink to that directory.
#
# Also installs gcc + libc6-dev with apt-get when missing (cgo fixtures).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-go-toolchains.sh: must run as root (apt-get)" >&2
  exit 1
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TC="$REPO/.toolchains"
PKGROOT="$TC/.pkgroot"   # dpkg -x targets, one folder per toolchain
APTDIR="$TC/.apt"        # private apt state, one folder per suite; downloaded .debs
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
export DEBIAN_FRONTEND=noninteractive

# version  suite  (the last line may fall back to the newest golang-1.2x of its suite)
WANTED=(
  "1.15 bullseye"
  "1.19 bookworm"
  "1.21 bookworm-backports"
  "1.22 bookworm-backports"
  "1.23 bookworm-backports"
  "1.26 unstable"
)
FALLBACK_SUITE=unstable

log() { echo "install-go-toolchains: $*"; }
die() { echo "install-go-toolchains: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------------
# The machine's Debian mirror and the suites it lists.
# ---------------------------------------------------------------------------------------------------------------
# shellcheck disable=SC1091
CODENAME="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"

# Prints "URI SUITE" for every Debian entry with component main: deb822 files first, then one-line lists.
machine_entries() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # deb822: paragraphs separated by blank lines; field names are case-insensitive.
    awk '
      function flush() {
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && comps ~ /(^|[ \t])main([ \t]|$)/ && enabled !~ /^[ \t]*no/) {
          n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
          for (i = 1; i <= n; i++) if (u[i] != "") for (j = 1; j <= m; j++) if (s[j] != "") print u[i], s[j]
        }
        types = uris = suites = comps = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        line = $0; key = tolower(line); sub(/:.*/, "", key); val = line; sub(/^[^:]*:[ \t]*/, "", val)
        if (key == "types") types = val; else if (key == "uris") uris = val
        else if (key == "suites") suites = val; else if (key == "components") comps = val
        else if (key == "enabled") enabled = tolower(val)
      }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    # deb [options] URI SUITE COMPONENT...
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && NF >= 4 {
      for (i = 4; i <= NF; i++) if ($i == "main") { print $2, $3; break } }'
  done
}

ENTRIES="$(machine_entries || true)"
if [ -n "${QUIETFLAME_DEBIAN_URI:-}" ]; then
  MIRROR="$QUIETFLAME_DEBIAN_URI"
else
  # The main Debian archive: the entry that carries the machine's own codename (not -security/-updates).
  MIRROR="$(awk -v c="$CODENAME" '$2 == c { print $1; exit }' <<<"$ENTRIES")"
fi
[ -n "$MIRROR" ] || die "cannot find the Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list (set QUIETFLAME_DEBIAN_URI)"
MIRROR="${MIRROR%/}"

machine_lists_suite() { awk -v m="$MIRROR" -v s="$1" '{ sub(/\/$/, "", $1) } $1 == m && $2 == s { f = 1 } END { exit !f }' <<<"$ENTRIES"; }

# ---------------------------------------------------------------------------------------------------------------
# apt: the machine's own for suites it lists, a private sources list otherwise.
# ---------------------------------------------------------------------------------------------------------------
declare -A UPDATED=()

private_opts() { # SUITE -> apt options for that suite's private state
  local d="$APTDIR/$1"
  echo "-o Dir::Etc::sourcelist=$d/sources.list -o Dir::Etc::sourceparts=- -o Dir::State::Lists=$d/lists -o Dir::Cache=$d/cache"
}

apt_for() { # SUITE apt-get|apt-cache ARGS...
  local suite="$1" tool="$2"; shift 2
  if machine_lists_suite "$suite"; then
    "$tool" -q -o DPkg::Lock::Timeout=300 "$@"
  else
    # shellcheck disable=SC2046
    "$tool" -q $(private_opts "$suite") "$@"
  fi
}

update_suite() { # SUITE: once per run
  local suite="$1" d="$APTDIR/$1"
  [ -n "${UPDATED[$suite]:-}" ] && return 0
  if ! machine_lists_suite "$suite"; then
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
    # Verified against the machine's archive keyring; no [trusted=yes] needed (checked for all four suites).
    echo "deb [signed-by=$KEYRING] $MIRROR $suite main" >"$d/sources.list"
  fi
  apt_for "$suite" apt-get update >"$APTDIR/update-$suite.log" 2>&1 ||
    { cat "$APTDIR/update-$suite.log" >&2; die "apt-get update failed for $suite (see above)"; }
  if grep -qE '^(W|E): .*(NO_PUBKEY|not signed|EXPKEYSIG|BADSIG|is not signed)' "$APTDIR/update-$suite.log"; then
    cat "$APTDIR/update-$suite.log" >&2
    die "$suite: Release not verifiable with $KEYRING"
  fi
  UPDATED[$suite]=1
}

has_pkg() { # SUITE PKG
  apt_for "$1" apt-cache madison "$2" 2>/dev/null | awk -F'|' -v s="$1" '$3 ~ (" " s "/") { f = 1 } END { exit !f }'
}

# ---------------------------------------------------------------------------------------------------------------
# One toolchain.
# ---------------------------------------------------------------------------------------------------------------
go_version() { # GOROOT -> "go version ..." or nothing
  local goroot="$1"
  [ -x "$goroot/bin/go" ] || return 1
  (cd / && env -u GOROOT -u GOPATH -u GOFLAGS GOTOOLCHAIN=local GO111MODULE=off GOCACHE=/nonexistent-gocache \
    "$goroot/bin/go" version 2>/dev/null)
}

install_one() { # VERSION SUITE
  local v="$1" suite="$2" link="$TC/go$1" dest="$PKGROOT/go$1" dl="$APTDIR/debs/go$1" out
  if out="$(go_version "$link")" && [[ "$out" == "go version go$v"* ]]; then
    log "go$v  present   $out  ($link)"
    return 0
  fi
  if out="$(go_version "$dest/usr/lib/go-$v")" && [[ "$out" == "go version go$v"* ]]; then
    ln -sfn ".pkgroot/go$v/usr/lib/go-$v" "$link" # unpacked earlier, only the link was missing
    log "go$v  relinked  $out  ($link)"
    return 0
  fi
  update_suite "$suite"
  has_pkg "$suite" "golang-$v-go" || die "golang-$v-go is not in $suite at $MIRROR"
  rm -rf "$dl" && mkdir -p "$dl"
  chown _apt "$dl" 2>/dev/null || true # apt downloads as _apt when it can write the target folder
  (cd "$dl" && apt_for "$suite" apt-get download "golang-$v-go/$suite" "golang-$v-src/$suite") \
    >"$dl/download.log" 2>&1 || { cat "$dl/download.log" >&2; die "apt-get download golang-$v-{go,src}/$suite failed"; }
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  local deb
  for deb in "$dl"/*.deb; do dpkg -x "$deb" "$dest.tmp"; done
  [ -x "$dest.tmp/usr/lib/go-$v/bin/go" ] || die "go$v: usr/lib/go-$v/bin/go missing after dpkg -x"
  [ -f "$dest.tmp/usr/lib/go-$v/src/runtime/proc.go" ] || die "go$v: stdlib sources missing (golang-$v-src)"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  ln -sfn ".pkgroot/go$v/usr/lib/go-$v" "$link"
  out="$(go_version "$link")" || die "go$v: $link/bin/go version failed"
  [[ "$out" == "go version go$v"* ]] || die "go$v: unexpected: $out"
  rm -rf "$dl" # the .debs are not needed once unpacked
  log "go$v  installed $out  ($suite, $link)"
}

# ---------------------------------------------------------------------------------------------------------------
mkdir -p "$TC" "$PKGROOT" "$APTDIR"

# gcc + libc headers for cgo fixtures (the only packages this script installs on the machine).
missing=()
for p in gcc libc6-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]} (cgo)"
  apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null
  apt-get -q -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

log "mirror $MIRROR (from the machine's apt sources), keyring $KEYRING"
for entry in "${WANTED[@]}"; do
  read -r v suite <<<"$entry"
  if [ "$suite" = "$FALLBACK_SUITE" ] && ! go_version "$TC/go$v" >/dev/null; then
    update_suite "$suite"
    if ! has_pkg "$suite" "golang-$v-go"; then
      newest="$(apt_for "$suite" apt-cache pkgnames golang-1. | sed -n 's/^golang-\(1\.2[0-9]*\)-go$/\1/p' | sort -V | tail -1)"
      [ -n "$newest" ] || die "no golang-1.2x-go in $suite"
      log "golang-$v-go is not in $suite; using the newest there instead: golang-$newest-go"
      v="$newest"
    fi
  fi
  install_one "$v" "$suite"
done
