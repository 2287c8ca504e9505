#!/bin/sh
# Fetch and checksum an official FreeBSD VM image (BASIC-CLOUDINIT, UFS) for a
# release ("15.0-RELEASE") or a snapshot ("16.0-CURRENT"), into DIR, unpacked.
# FORMAT is qcow2 (QEMU; the default) or raw (bhyve reads raw images only).
# usage: vm/fetch-image.sh RELEASE [DIR] [FORMAT]
set -eu
rel=${1:?usage: vm/fetch-image.sh RELEASE [DIR] [qcow2|raw]}
dir=${2:-images}
fmt=${3:-qcow2}
case "$fmt" in qcow2|raw) ;; *) echo "format must be qcow2 or raw, not $fmt" >&2; exit 2 ;; esac
arch=amd64
case "$rel" in
  *-CURRENT|*-STABLE|*-ALPHA*|*-BETA*|*-RC*) base="https://download.freebsd.org/snapshots/VM-IMAGES/$rel/$arch/Latest" ;;
  *) base="https://download.freebsd.org/releases/VM-IMAGES/$rel/$arch/Latest" ;;
esac
img="FreeBSD-$rel-$arch-BASIC-CLOUDINIT-ufs.$fmt"
mkdir -p "$dir"
cd "$dir"
# `command fetch`: FreeBSD's fetch(1), not this function.
fetch() { if command -v curl >/dev/null; then curl -fsSLO "$1"; else command fetch -q "$1"; fi; }
[ -f "$img.xz" ] || fetch "$base/$img.xz"
fetch "$base/CHECKSUM.SHA256"
want=$(grep "($img.xz)" CHECKSUM.SHA256 | awk '{print $NF}')
if command -v sha256sum >/dev/null; then got=$(sha256sum "$img.xz" | awk '{print $1}'); else got=$(sha256 -q "$img.xz"); fi
[ "$want" = "$got" ] || { echo "checksum mismatch for $img.xz" >&2; exit 1; }
xz -dkf "$img.xz"
echo "$dir/$img"
