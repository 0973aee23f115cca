#!/usr/bin/env bash
# Runs every test. Installs, when missing, what the tests need:
#   - the MinIO server (pinned, through go install) for the S3 tier tests;
#   - Chromium (Debian package) for the browser test of the example pages;
#   - nginx (Debian package) for the check of the fleet recipe's config;
#   - gcc (Debian package) when there is no C compiler: go test -race needs cgo.
# Nothing here talks to anything but 127.0.0.1 once installed.
set -euo pipefail
cd "$(dirname "$0")/.."

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
export PATH="$PATH:$(go env GOPATH)/bin"

if ! command -v minio >/dev/null 2>&1; then
  echo "scripts/test.sh: installing the MinIO server ($MINIO_VERSION, takes a few minutes once)"
  (cd /tmp && go install "github.com/minio/minio@$MINIO_VERSION")
fi

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v "$(go env CC)" >/dev/null 2>&1 || need_apt+=(gcc)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "scripts/test.sh: installing ${need_apt[*]} with apt"
    apt-get update -q
    # nginx's package starts the system service; the tests run their own.
    RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
    if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
  else
    echo "scripts/test.sh: ${need_apt[*]} missing; install with: sudo apt-get install -y ${need_apt[*]} (the chromium and nginx tests skip without them; -race fails without a C compiler)" >&2
  fi
fi

go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go test -race -count=1 ./...
# Race builds make their socket I/O through the standard calls (see
# internal/sockio); run what serves over sockets once more as it ships.
go test -count=1 ./internal/sockio ./proxy .
go test -race -tags sockio_raw -count=1 ./internal/sockio # the raw calls' own state, race-checked
