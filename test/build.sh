#!/usr/bin/env bash
# Builds the plugin out of tree in ./build and installs it under ./build/prefix:
#   ./autogen.sh && ../configure --prefix=$PWD/prefix && make && make install
# Prints the path of the installed plugin. Extra arguments go to configure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$HOME/.cargo/bin"
./autogen.sh >/dev/null
mkdir -p build
cd build
if [ ! -f Makefile ] || [ ../configure -nt Makefile ] || [ -n "${1:-}" ]; then
    ../configure --prefix="$PWD/prefix" "$@" >/dev/null
fi
make -j"$(nproc)" >/dev/null
make install >/dev/null
echo "$PWD/prefix/lib/janus/plugins/libjanus_audioroom.so"
