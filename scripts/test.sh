#!/usr/bin/env bash
# Runs every test. Installs, when missing, what the tests need:
#   - the MinIO server (pinned, through go install) for the S3 tier tests.
# Nothing here talks to anything but 127.0.0.1 once installed.
set -euo pipefail
cd "$(dirname "$0")/.."

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
export PATH="$PATH:$(go env GOPATH)/bin"

if ! command -v minio >/dev/null 2>&1; then
  echo "scripts/test.sh: installing the MinIO server ($MINIO_VERSION, takes a few minutes once)"
  (cd /tmp && go install "github.com/minio/minio@$MINIO_VERSION")
fi

go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go test -race -count=1 ./...
