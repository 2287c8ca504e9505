#!/bin/sh
# Shell-loop reproducer of racebench's `vmove` scenario (detach vs vmove),
# written the way FreeBSD's tests/sys/net scripts are: one `ip` process per
# op, loops in the background. Its Linux twin of `ifstress --suite vmove`:
# movers move veth ends between namespaces while destroyers delete and
# re-create them. Slower than ifstress by design (fork+exec per op).
# Usage: vmove.sh SECONDS[s]   (runs in a disposable guest)
# ifstress's guests name the real tools ($IP): busybox sh prefers its applets.
: "${IP:=ip}"
d=${1%s}; end=$(( $(date +%s) + d ))
$IP netns add rbs1; $IP netns add rbs2
for i in 0 1 2 3 4 5; do $IP link add rbp$i type veth peer name rbq$i; done
mover() {
	while [ "$(date +%s)" -lt "$end" ]; do
		for i in 0 1 2 3 4 5; do
			$IP link set rbp$i netns rbs1 2>/dev/null
			$IP -n rbs1 link set rbp$i netns rbs2 2>/dev/null
			$IP -n rbs2 link set rbp$i netns 1 2>/dev/null
		done
	done
}
destroyer() {
	while [ "$(date +%s)" -lt "$end" ]; do
		for i in 0 1 2 3 4 5; do
			for ns in rbs1 rbs2; do $IP -n $ns link del rbp$i 2>/dev/null; done
			$IP link del rbp$i 2>/dev/null
			$IP link add rbp$i type veth peer name rbq$i 2>/dev/null
		done
	done
}
mover & mover & destroyer &
wait
