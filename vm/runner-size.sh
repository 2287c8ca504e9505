#!/bin/sh
# A guest's size on this machine, for CI jobs that boot one guest at a time:
# every CPU, and three quarters of the memory (the rest is the host's: QEMU
# itself, the runner, the page cache of the image). Prints GUEST_CPUS=N and
# GUEST_MEM=MIB, lines for $GITHUB_ENV.
set -eu
cpus=$(getconf _NPROCESSORS_ONLN)
kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
mem=$((kib / 1024 * 3 / 4))
if [ "$mem" -lt 1024 ]; then
  echo "runner-size: $((kib / 1024)) MiB of memory leaves too little for a guest" >&2
  exit 1
fi
echo "GUEST_CPUS=$cpus"
echo "GUEST_MEM=$mem"
