#!/bin/sh
# Install what `ifstress vm run` needs on a Debian/Ubuntu or FreeBSD host.
set -eu
case "$(uname -s)" in
  Linux)
    apt-get update
    apt-get install -y qemu-system-x86 qemu-utils xorriso xz-utils busybox-static
    [ -w /dev/kvm ] || echo "note: /dev/kvm is not writable; guests will run under TCG (slow)" ;;
  FreeBSD)
    pkg install -y qemu-nox11 rust
    # bhyve guests' consoles are nmdm(4) pairs: a module, not in GENERIC.
    kldload -n nmdm
    echo "note: makefs(8) from base makes the cidata drive" ;;
esac
