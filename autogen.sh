#!/bin/sh
# Generates ./configure (needs autoconf, automake, libtool and pkg-config).
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
autoreconf --force --install --verbose
