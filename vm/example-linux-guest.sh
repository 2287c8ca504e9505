#!/bin/sh
# The loop the CI test runs: a Debian kernel as the guest, 2 minutes, under TCG.
set -eu
k=$(ls /boot/vmlinuz-* | sort | tail -n 1)
cargo build --release
exec ./target/release/ifstress vm run --guest linux --image "$k" --suite vmove --duration 2m --accel auto --mem 1024 --out ifstress-vm
