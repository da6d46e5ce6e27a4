#!/usr/bin/env bash
# The stand-ins' common base: a minimal Debian bookworm root file system, as a tarball for
# `docker import`. Run by build.sh (as root); the tarball is cached, keyed by this file's hash.
#
# Usage: rootfs.sh OUT.tar [MIRROR]
set -euo pipefail

OUT="$1"
MIRROR="${2:-http://deb.debian.org/debian}"
SUITE=bookworm

root="$(mktemp -d "$(dirname "$OUT")/rootfs.XXXXXX")"
trap 'rm -rf "$root" "$root.log"' EXIT

debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
  printf 'debootstrap failed; its last lines:\n' >&2
  tail -n 20 "$root.log" >&2
  exit 1
}

# What Debian's slim images leave out, now and for every later apt-get install in a stand-in.
cat >"$root/etc/dpkg/dpkg.cfg.d/standin-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat >"$root/etc/apt/apt.conf.d/standin-slim" <<'CFG'
APT::Install-Recommends "false";
Acquire::Languages "none";
CFG
cat >"$root/etc/apt/sources.list" <<LIST
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
LIST
find "$root/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/lib/apt/lists/* \
  "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log \
  "$root"/var/log/apt/*
# Docker provides these at run time; none of the host's may leak into an image.
rm -f "$root/etc/hostname" "$root/etc/resolv.conf" "$root/etc/hosts"

tar --numeric-owner -C "$root" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
  -cf "$OUT.partial" .
mv "$OUT.partial" "$OUT"
