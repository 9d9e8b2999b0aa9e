#!/usr/bin/env bash
# Installs the pgvector extension into the local PostgreSQL 15 when it is missing.
# Debian 12 ships no pgvector package, so the trixie source package is built against PG 15.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
sharedir=$("$PG_CONFIG" --sharedir)
if [ -f "$sharedir/extension/vector.control" ]; then
  exit 0
fi

echo "pgvector: building the extension from Debian's source package" >&2
export DEBIAN_FRONTEND=noninteractive
if ! grep -rqs "trixie" /etc/apt/sources.list /etc/apt/sources.list.d/ ; then
  cat > /etc/apt/sources.list.d/semcache-trixie-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -qq
apt-get install -y -qq postgresql-server-dev-15 dpkg-dev make gcc >/dev/null
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
cd "$workdir"
apt-get source -qq pgvector >/dev/null
cd pgvector-*/
make -s PG_CONFIG="$PG_CONFIG" >/dev/null
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
echo "pgvector: installed" >&2
