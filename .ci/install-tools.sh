#!/usr/bin/env bash
# Installs the tools that CI's interop tests use: the standard nats CLI
# (natscli), which cmd/strand's tests drive against a real server.
set -euo pipefail

NATSCLI_VERSION="${NATSCLI_VERSION:-v0.5.0}"

go install "github.com/nats-io/natscli/nats@${NATSCLI_VERSION}"

bin="$(go env GOBIN)"
if [ -z "$bin" ]; then
	bin="$(go env GOPATH)/bin"
fi
echo "installed natscli ${NATSCLI_VERSION} at ${bin}/nats"
"${bin}/nats" --version
