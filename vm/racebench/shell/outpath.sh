#!/bin/sh
# Shell-loop reproducer of racebench's `outpath` scenario (output path vs
# detach): senders ping the all-nodes groups out of veth ends while another
# loop deletes and re-creates them; one process per op, as tests/sys/net
# scripts do. Slower than ifstress by design.
# Usage: outpath.sh SECONDS[s]   (runs in a disposable guest)
# ifstress's guests name the real tools ($IP): busybox sh prefers its applets.
: "${IP:=ip}"
d=${1%s}; end=$(( $(date +%s) + d ))
for i in 0 1 2 3 4 5; do
	$IP link add rbp$i type veth peer name rbq$i
	$IP link set rbp$i up; $IP link set rbq$i up
	$IP addr add 198.18.0.$((i + 1))/24 dev rbp$i
done
sender() {
	while [ "$(date +%s)" -lt "$end" ]; do
		for i in 0 1 2 3 4 5; do
			ping -6 -c 1 -W 1 -I rbp$i ff02::1 >/dev/null 2>&1
			ping -c 1 -W 1 -I rbp$i 224.0.0.1 >/dev/null 2>&1
		done
	done
}
churn() {
	while [ "$(date +%s)" -lt "$end" ]; do
		for i in 0 1 2 3 4 5; do
			$IP link del rbp$i 2>/dev/null
			$IP link add rbp$i type veth peer name rbq$i 2>/dev/null
			$IP link set rbp$i up 2>/dev/null; $IP link set rbq$i up 2>/dev/null
			$IP addr add 198.18.0.$((i + 1))/24 dev rbp$i 2>/dev/null
		done
	done
}
sender & sender & churn &
wait
