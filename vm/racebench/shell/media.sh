#!/bin/sh
# Shell-loop reproducer of racebench's `media` scenario (status query vs
# clone destroy, the lagg SIOCGIFMEDIA race): `ethtool DEV` queries link
# settings of veth ends while another loop deletes and re-creates them; one
# process per op, as tests/sys/net scripts do (`ifconfig lagg0` there).
# Usage: media.sh SECONDS[s]   (runs in a disposable guest)
# ifstress's guests name the real tools ($IP): busybox sh prefers its applets.
: "${IP:=ip}" "${ETHTOOL:=ethtool}"
d=${1%s}; end=$(( $(date +%s) + d ))
for i in 0 1 2 3 4 5; do $IP link add rbp$i type veth peer name rbq$i; done
query() {
	while [ "$(date +%s)" -lt "$end" ]; do
		for i in 0 1 2 3 4 5; do $ETHTOOL rbp$i >/dev/null 2>&1; done
	done
}
destroyer() {
	while [ "$(date +%s)" -lt "$end" ]; do
		for i in 0 1 2 3 4 5; do
			$IP link del rbp$i 2>/dev/null
			$IP link add rbp$i type veth peer name rbq$i 2>/dev/null
		done
	done
}
query & query & destroyer &
wait
