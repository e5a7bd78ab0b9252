#!/usr/bin/env bash
# Installs the outside MCP client of cmd/strand's TestMCP_OutsideClient:
# the official MCP TypeScript SDK (@modelcontextprotocol/sdk), pinned by
# .ci/mcpclient/package-lock.json. Needs node (v20 or later) and npm.
set -euo pipefail
cd "$(dirname "$0")/mcpclient"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	if command -v apt-get >/dev/null; then
		SUDO=""
		[ "$(id -u)" = 0 ] || SUDO=sudo
		$SUDO apt-get update -qq
		$SUDO apt-get install -y -qq nodejs npm
	else
		echo "install-mcpclient: node and npm are required (node 18 or later)" >&2
		exit 1
	fi
fi
npm ci --no-audit --no-fund
node --version
echo "installed $(node -p 'require("./node_modules/@modelcontextprotocol/sdk/package.json").version') of @modelcontextprotocol/sdk in $(pwd)"
