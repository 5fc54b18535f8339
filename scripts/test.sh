#!/usr/bin/env bash
# The one test command: formatting, vet, unit + integration tests with the race
# detector (emulator in-process over HTTPS, real MSAL Go, local Redis), then the
# browser end-to-end tests when e2e/ exists.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 ./...
