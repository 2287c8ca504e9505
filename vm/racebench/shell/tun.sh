#!/bin/sh
# Shell-loop reproducer of racebench's `tun` scenario (device open vs stack
# teardown): tun devices are made inside namespaces and deleted from
# outside while another loop removes and re-creates the namespaces; one
# process per op, as tests/sys/net scripts do.
# Usage: tun.sh SECONDS[s]   (runs in a disposable guest)
# ifstress's guests name the real tools ($IP): busybox sh prefers its applets.
: "${IP:=ip}"
d=${1%s}; end=$(( $(date +%s) + d ))
for n in 1 2 3; do $IP netns add rbs$n; done
opener() {
	while [ "$(date +%s)" -lt "$end" ]; do
		for n in 1 2 3; do
			$IP -n rbs$n tuntap add dev rbt$n mode tun 2>/dev/null
			$IP -n rbs$n tuntap del dev rbt$n mode tun 2>/dev/null
		done
	done
}
stacker() {
	while [ "$(date +%s)" -lt "$end" ]; do
		for n in 1 2 3; do
			$IP netns del rbs$n 2>/dev/null
			$IP netns add rbs$n 2>/dev/null
		done
	done
}
opener & opener & stacker &
wait
