#!/bin/sh
# Fetch freebsd-src, shallow, at the revision a kernel is to be built from
# (`ifstress vm build-kernel --src DIR`): a release's tag (14.3-RELEASE is
# release/14.3.0, what its images were built from), a snapshot branch's head
# (16.0-CURRENT is main, 15.0-STABLE is stable/15), or REV, any commit or
# ref. Both sides of a patch A/B are built from the same fetch.
# `--ref RELEASE` only prints the ref RELEASE maps to.
# usage: vm/kernel-source.sh RELEASE DIR [REV] | vm/kernel-source.sh --ref RELEASE
set -eu
usage="usage: vm/kernel-source.sh RELEASE DIR [REV] | --ref RELEASE"
only_ref=
if [ "${1:-}" = --ref ]; then only_ref=1; shift; fi
rel=${1:?$usage}
repo=${FREEBSD_SRC_REPO:-https://git.FreeBSD.org/src.git}
ver=${rel%%-*}
case "$rel" in
  *-RELEASE) ref="release/$ver.0" ;;
  *-CURRENT) ref=main ;;
  *-STABLE) ref="stable/${ver%%.*}" ;;
  *-ALPHA*|*-BETA*|*-RC*) ref="releng/$ver" ;;
  *) echo "kernel-source.sh: unknown release name $rel" >&2; exit 2 ;;
esac
if [ -n "$only_ref" ]; then echo "$ref"; exit 0; fi
dir=${2:?$usage}
rev=${3:-}
[ -z "$rev" ] || ref=$rev
mkdir -p "$dir"
cd "$dir"
[ -d .git ] || git init -q .
git fetch -q --depth 1 "$repo" "$ref"
git checkout -q FETCH_HEAD
echo "$dir: freebsd-src $(git rev-parse --short HEAD) ($ref)"
