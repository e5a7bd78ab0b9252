#!/usr/bin/env bash
# Installs what the FUSE mount tests need: fuse3 (fusermount3, for mounts
# by users other than root) and fio (the concurrent read/write check with
# data verification). Without /dev/fuse the mount tests skip themselves;
# with it, .ci/run sets STRAND_REQUIRE_FUSE so that none of them may skip.
set -euo pipefail

# An ordinary user mounts through fusermount3, which opens /dev/fuse: the
# fuse3 package's udev rule makes it 0666, but a machine without udev (a
# container, a microVM) may leave it 0600, which fails TestMount_NonRoot
# before any mount code runs. As root, give it the mode udev would.
if [ -c /dev/fuse ] && [ "$(id -u)" -eq 0 ] && [ "$(stat -c %a /dev/fuse)" != 666 ]; then
	chmod 0666 /dev/fuse && echo "/dev/fuse made 0666, as the fuse3 package's udev rule does"
fi

need=()
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
command -v fio >/dev/null 2>&1 || need+=(fio)
if [ ${#need[@]} -eq 0 ]; then
	echo "fuse3 and fio are installed"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "not root: cannot install ${need[*]}; the tests that need them will say so" >&2
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt may hold the lock for a while: wait for it.
for i in $(seq 1 60); do
	if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; then
		echo "installed ${need[*]}"
		exit 0
	fi
	echo "apt busy, retrying ($i)" >&2
	sleep 5
done
echo "could not install ${need[*]}" >&2
exit 1
