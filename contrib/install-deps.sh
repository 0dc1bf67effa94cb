#!/bin/sh
# Install everything yunguan needs to build, test and run on Debian 12.
# Used by both quick-start commands and by .ci/run.  Needs root (or sudo).
set -eu

# Build tools and the libraries DESIGN.md chose (one -dev package each).
BUILD_PKGS="build-essential autoconf automake libtool pkg-config
 libvirt-dev libnl-3-dev libnl-route-3-dev libsqlite3-dev libyaml-dev
 libcurl4-gnutls-dev libmicrohttpd-dev libjansson-dev libxml2-dev libcmocka-dev"

# What the tests and the demo run against: the sqlite3 shell (tamper tests), jq,
# curl (API tests), a real libvirtd with QEMU (qemu-utils: qemu-img makes the
# qcow2 volumes), iproute2 for namespaces,
# clang for the libFuzzer targets, wrk for the HTTP benchmarks, python3 with
# jsonschema and yaml to check schema/playbook.schema.json, openssl to make
# the HTTPS test's CA and certificate.
RUN_PKGS="sqlite3 curl jq ca-certificates openssl iproute2 procps
 libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils clang wrk
 python3-jsonschema python3-yaml"

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $BUILD_PKGS $RUN_PKGS
