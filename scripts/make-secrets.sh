#!/usr/bin/env bash
# Makes what the agent's access control needs, with openssl, into deploy/secrets/ (never committed), where
# deploy/kustomization.yaml's secretGenerator reads it:
#   ca.crt ca.key      a CA of your own: it signs the agents' certificate and your users' client certificates
#   tls.crt tls.key    the agents' server certificate (SANs: DNS:quietflame, localhost, 127.0.0.1 and every --san)
#   client.crt client.key   a client certificate for pprof (-tls_cert -tls_key -tls_ca ca.crt), browsers, curl
#   token              a random token for curl/scripts (Bearer) and go tool pprof (https://any:TOKEN@NODE:7070/…)
# An existing CA and token are kept, so running it again (other SANs, renewal, --client NAME) changes nothing else.
#
#   scripts/make-secrets.sh [--out DIR] [--san IP:10.0.0.5|DNS:*.nodes.example]... [--client NAME] [--days N]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/deploy/secrets"
sans=(DNS:quietflame DNS:localhost IP:127.0.0.1)
client=sre
days=365
die() { echo "make-secrets: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out="$2"; shift 2 ;;
    --san) [[ "${2:-}" =~ ^(IP|DNS):[^,[:space:]]+$ ]] || die "--san ${2:-}: expected IP:ADDRESS or DNS:NAME"; sans+=("$2"); shift 2 ;;
    --client) [[ "${2:-}" =~ ^[A-Za-z0-9._@-]+$ ]] || die "--client ${2:-}: expected a name"; client="$2"; shift 2 ;;
    --days) [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--days ${2:-}: expected a number"; days="$2"; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
command -v openssl >/dev/null || die "openssl not found: apt-get install openssl"
mkdir -p "$out"
chmod 700 "$out"
cd "$out"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -s ca.key ] || [ ! -s ca.crt ]; then
  key ca.key
  openssl req -x509 -new -key ca.key -out ca.crt -days 3650 -subj "/CN=quietflame CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
fi

# sign NAME SUBJECT EXTENSIONS: NAME.key (new) and NAME.crt signed by the CA.
sign() {
  key "$1.key.new"
  openssl req -new -key "$1.key.new" -subj "$2" -out "$1.csr"
  printf '%b' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" -extfile "$1.ext" -out "$1.crt.new" 2>/dev/null
  mv "$1.key.new" "$1.key"
  mv "$1.crt.new" "$1.crt"
  rm -f "$1.csr" "$1.ext"
}
san="$(IFS=,; echo "${sans[*]}")"
sign tls "/CN=quietflame" "subjectAltName=$san\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
sign client "/CN=$client" "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n"
[ -s token ] || openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n' > token
chmod 600 ./*
echo "make-secrets: $out: CA, server certificate ($san), client certificate CN=$client, token" >&2
