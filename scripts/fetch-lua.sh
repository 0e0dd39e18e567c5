#!/bin/sh
# Fetch the Lua 5.4 source from Debian's source package (apt-get source lua5.4).
#
# The only network used is Debian's own apt repositories. When no deb-src entry
# exists yet, one is added for Debian 12 "bookworm" (deb822 file
# /etc/apt/sources.list.d/devlink-deb-src.sources) and `apt-get update` runs.
#
# Destination: $DEVLINK_LUA_SRC, default ~/.cache/devlink/lua5.4. It receives the
# unpacked source tree (with Debian's patches applied), so $DEST/src/lua.c exists.
# Idempotent: does nothing when the source is already there.
set -eu

DEST="${DEVLINK_LUA_SRC:-${XDG_CACHE_HOME:-$HOME/.cache}/devlink/lua5.4}"

# Debian's 0002-lua-modules-paths.patch makes luaconf.h include this header,
# which debian/rules generates at configure time; do the same.
MULTIARCH_H=lua5.4-deb-multiarch.h
write_multiarch_h() {
    ma=$(cc -print-multiarch 2>/dev/null || true)
    [ -n "$ma" ] || ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)
    [ -n "$ma" ] || ma="$(uname -m)-linux-gnu"
    printf '#ifndef _LUA_DEB_MULTIARCH_\n#define _LUA_DEB_MULTIARCH_\n#define DEB_HOST_MULTIARCH "%s"\n#endif\n' "$ma" > "$1/src/$MULTIARCH_H"
}

if [ -f "$DEST/src/lua.c" ] && [ -f "$DEST/src/lvm.c" ]; then
    if grep -q "$MULTIARCH_H" "$DEST/src/luaconf.h" && [ ! -f "$DEST/src/$MULTIARCH_H" ]; then
        write_multiarch_h "$DEST"
    fi
    echo "$DEST"
    exit 0
fi

log() { echo "fetch-lua: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script needs a Debian-based system (or set DEVLINK_LUA_SRC to an unpacked Lua 5.4 source tree)"
command -v dpkg-source >/dev/null 2>&1 || {
    log "dpkg-source missing; installing dpkg-dev"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get install -y --no-install-recommends dpkg-dev >&2
}

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot add a deb-src entry"
    SUDO="sudo"
fi

# 1. Make sure apt knows about source packages.
if ! apt-cache showsrc lua5.4 2>/dev/null | grep -q '^Package: lua5.4'; then
    SRCFILE=/etc/apt/sources.list.d/devlink-deb-src.sources
    if [ ! -f "$SRCFILE" ]; then
        log "adding deb-src entry $SRCFILE (Debian 12 bookworm)"
        KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
        {
            echo "# Added by devlink scripts/fetch-lua.sh: source packages (apt-get source lua5.4)"
            echo "Types: deb-src"
            echo "URIs: http://deb.debian.org/debian"
            echo "Suites: bookworm bookworm-updates"
            echo "Components: main"
            [ -f "$KEYRING" ] && echo "Signed-By: $KEYRING"
        } | $SUDO tee "$SRCFILE" >/dev/null
    fi
    log "apt-get update"
    $SUDO apt-get update -qq >&2 || die "apt-get update failed"
    apt-cache showsrc lua5.4 2>/dev/null | grep -q '^Package: lua5.4' \
        || die "apt still does not know the source package lua5.4 after adding $SRCFILE"
fi

# 2. Download and unpack into a scratch dir next to DEST, then move into place.
PARENT=$(dirname "$DEST")
mkdir -p "$PARENT"
WORK=$(mktemp -d "$PARENT/.lua-fetch.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
log "apt-get source lua5.4 (into $WORK)"
# As root apt warns that it cannot drop privileges to _apt for the download
# into a root-owned dir; that is harmless here.
( cd "$WORK" && apt-get source -qq lua5.4 >&2 ) || die "apt-get source lua5.4 failed"
TREE=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'lua5.4-*' | head -n 1)
[ -n "$TREE" ] && [ -f "$TREE/src/lua.c" ] || die "unpacked source has no src/lua.c (in $WORK)"
if grep -q "$MULTIARCH_H" "$TREE/src/luaconf.h"; then
    write_multiarch_h "$TREE"
fi
rm -rf "$DEST"
mv "$TREE" "$DEST"
# keep the .dsc name for the record (version)
ls "$WORK"/*.dsc 2>/dev/null | head -n 1 | xargs -r basename > "$DEST/.devlink-dsc"
log "Lua source in $DEST"
echo "$DEST"
