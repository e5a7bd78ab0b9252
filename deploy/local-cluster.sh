#!/usr/bin/env bash
# Run a three-node NATS JetStream cluster on this machine, for trying Strand in
# replicated mode and for the fault tests' manual cousins.
#
#   deploy/local-cluster.sh start  DIR   build nats-server, start n1..n3, wait for a meta leader
#   deploy/local-cluster.sh status DIR   show each node's pid, health and the meta leader
#   deploy/local-cluster.sh stop   DIR   stop the nodes (SIGTERM, then SIGKILL after 30s)
#
# nats-server is built from this module's own dependency (go.mod pins the
# version), so nothing is downloaded. Everything lives under DIR:
#   DIR/bin/nats-server   DIR/n1 .. DIR/n3 (JetStream data)   DIR/n1.log ..   DIR/n1.pid ..
# Client ports 14222, 14223, 14224; routes 16222-16224; monitoring 18222-18224
# (deploy/cluster/n1.conf .. n3.conf). Then, for example:
#   strand serve --nats nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224 --replicas 3
set -euo pipefail

usage() {
	echo "usage: $0 start|stop|status DIR" >&2
	exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
mkdir -p "$2"
dir=$(cd "$2" && pwd)
nodes=(n1 n2 n3)
client_port() { echo $((14221 + ${1#n})); }
monitor_port() { echo $((18221 + ${1#n})); }

# alive NODE: the node's pid file names a running process.
alive() {
	local pidfile=$dir/$1.pid
	[ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# healthy NODE: the node knows a JetStream meta leader and is current with it.
healthy() {
	curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$(monitor_port "$1")/healthz?js-meta-only=true" 2>/dev/null
}

meta_leader() {
	local n
	for n in "${nodes[@]}"; do
		local leader
		leader=$(curl -fsS --max-time 2 "http://127.0.0.1:$(monitor_port "$n")/jsz" 2>/dev/null |
			sed -n 's/.*"leader": *"\([^"]*\)".*/\1/p' | head -n1) || true
		if [ -n "$leader" ]; then
			echo "$leader"
			return 0
		fi
	done
	return 1
}

start() {
	local n
	for n in "${nodes[@]}"; do
		if alive "$n"; then
			echo "$n is already running (pid $(cat "$dir/$n.pid")); stop it first" >&2
			exit 1
		fi
	done
	mkdir -p "$dir/bin"
	echo "building nats-server from $root/go.mod ..."
	(cd "$root" && go build -o "$dir/bin/nats-server" github.com/nats-io/nats-server/v2)
	"$dir/bin/nats-server" --version

	for n in "${nodes[@]}"; do
		mkdir -p "$dir/$n"
		STRAND_NATS_STORE="$dir/$n" nohup "$dir/bin/nats-server" -c "$here/cluster/$n.conf" \
			>>"$dir/$n.log" 2>&1 </dev/null &
		echo $! >"$dir/$n.pid"
		echo "started $n (pid $!, client port $(client_port "$n"), log $dir/$n.log)"
	done

	# Up to 60 s for every node to answer and agree on a meta leader.
	local deadline=$((SECONDS + 60))
	while :; do
		local ok=0
		for n in "${nodes[@]}"; do
			if ! alive "$n"; then
				echo "$n exited; last lines of its log:" >&2
				tail -n 20 "$dir/$n.log" >&2
				exit 1
			fi
			if healthy "$n"; then ok=$((ok + 1)); fi
		done
		if [ "$ok" -eq ${#nodes[@]} ]; then
			break
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "cluster not ready after 60s ($ok of ${#nodes[@]} nodes healthy)" >&2
			exit 1
		fi
		sleep 0.2
	done
	echo "cluster ready: meta leader $(meta_leader || echo unknown)"
	echo "servers: nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224"
}

stop() {
	local n pid
	for n in "${nodes[@]}"; do
		if ! alive "$n"; then
			rm -f "$dir/$n.pid"
			echo "$n is not running"
			continue
		fi
		pid=$(cat "$dir/$n.pid")
		kill -TERM "$pid"
		local i
		for i in $(seq 1 300); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "$n did not stop within 30s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$dir/$n.pid"
		echo "stopped $n (pid $pid)"
	done
}

status() {
	local n running=0
	for n in "${nodes[@]}"; do
		if alive "$n"; then
			running=$((running + 1))
			local health=unhealthy
			healthy "$n" && health=healthy
			echo "$n: running (pid $(cat "$dir/$n.pid")), port $(client_port "$n"), $health"
		else
			echo "$n: stopped"
		fi
	done
	if [ "$running" -gt 0 ]; then
		echo "meta leader: $(meta_leader || echo none)"
	fi
	[ "$running" -eq ${#nodes[@]} ]
}

case $cmd in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
