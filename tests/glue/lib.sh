#!/usr/bin/env bash
# lib.sh - helpers of the hypervisor-glue script tests (sourced): a private
# scratch directory under $VMFS_TEST_TMP, volumes with a short heartbeat,
# nbdkit servers on unix sockets started and stopped by PID (only PIDs this
# test started), checks that count failures. Everything is removed by the
# EXIT trap, also on failure.
set -u
V=${VMFSCTL:?VMFSCTL not set}
PLUGIN=${VMFS_NBDKIT_PLUGIN:-}
T=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/glue-$(basename "$0" .sh).XXXXXX")
declare -A NBD_PID # name -> nbdkit PID (from its --pidfile)
MNTS=()
EXTRA_PIDS=() # other processes this test started (killed at exit)
fails=0
checks=0

glue_cleanup() {
	local n p
	for n in "${!NBD_PID[@]}"; do
		p=${NBD_PID[$n]}
		[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
	done
	for p in "${EXTRA_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for m in "${MNTS[@]}"; do fusermount3 -u -z "$m" 2>/dev/null; done
	rm -rf "$T"
}
trap glue_cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
ok() { # ok CONDITION-DESCRIPTION CMD...: the command must succeed
	local what=$1
	shift
	checks=$((checks + 1))
	"$@" >"$T/ok.out" 2>&1 || {
		fail "$what (rc $?): $(head -c 600 "$T/ok.out")"
		return 1
	}
}
eq() { # eq WHAT GOT WANT
	checks=$((checks + 1))
	[ "$1" != "" ] && [ "$2" == "$3" ] || fail "$1: got '$2', want '$3'"
}
finish() {
	echo "$checks checks, $fails failures"
	[ "$fails" -eq 0 ]
	exit $?
}
need() { # need CMD...: skip (77) when a tool is missing
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || {
			echo "SKIP: $c not installed"
			exit 77
		}
	done
}
need_plugin() {
	[ -n "$PLUGIN" ] && [ -f "$PLUGIN" ] || {
		echo "SKIP: nbdkit vmfs plugin not built"
		exit 77
	}
	need nbdkit
}

# mkvol IMG SIZE: a fresh volume, 8 hosts, 250 ms / 2 s heartbeat
mkvol() {
	rm -f "$1"
	truncate -s "$2" "$1"
	"$V" mkfs -q -H 8 -J 1M --hb-interval 250 --hb-timeout 2000 "$1" >/dev/null
}

uri() { echo "nbd+unix:///?socket=$T/$1.sock"; }

# A plugin built with ASan+UBSan (./run asan) is loaded by an nbdkit that is
# not: the sanitizer runtimes must be loaded first (LD_PRELOAD), and leak
# checking is off in that process (nbdkit's own allocations are not ours).
SAN_ENV=""
if [ -n "$PLUGIN" ] && [ -f "$PLUGIN" ]; then
	san_libs=$(ldd "$PLUGIN" 2>/dev/null | awk '/lib(asan|ubsan)\.so/ { print $3 }' | paste -sd:)
	if [ -n "$san_libs" ]; then
		SAN_ENV="LD_PRELOAD=$san_libs ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"
	fi
fi

# nbd_start NAME PARAM...: starts nbdkit (foreground, pidfile) serving on
# $T/NAME.sock and waits until it answers (30 s at most). Returns 1 when it
# exited instead (its stderr in $T/NAME.log).
nbd_start() {
	local name=$1 i p
	shift
	rm -f "$T/$name.sock" "$T/$name.pid"
	# shellcheck disable=SC2086 # SAN_ENV is a list of VAR=value words
	env $SAN_ENV timeout -k 5 600 nbdkit -f -P "$T/$name.pid" -U "$T/$name.sock" "$PLUGIN" "$@" \
		>"$T/$name.log" 2>&1 &
	local tpid=$!
	disown "$tpid" # no "Killed" job notices
	for i in $(seq 300); do
		if [ -s "$T/$name.pid" ] && [ -S "$T/$name.sock" ]; then
			p=$(cat "$T/$name.pid")
			NBD_PID[$name]=$p
			nbdinfo --can connect "$(uri "$name")" 2>/dev/null && return 0
		fi
		kill -0 "$tpid" 2>/dev/null || return 1
		sleep 0.1
	done
	fail "nbdkit $name did not start: $(cat "$T/$name.log")"
	return 1
}

# nbd_stop NAME: SIGTERM, wait for the process to go (10 s), else SIGKILL.
nbd_stop() {
	local p=${NBD_PID[$1]:-} i
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null
	unset "NBD_PID[$1]"
}

# nbd_kill NAME: SIGKILL (a host dies: its heartbeat stops).
nbd_kill() {
	local p=${NBD_PID[$1]:-}
	[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	unset "NBD_PID[$1]"
}

# qio NAME [-r] CMD...: qemu-io on server NAME; fails on any pattern
# mismatch. -r: a read-only export.
qio() {
	local name=$1 args=() c
	shift
	if [ "$1" = -r ]; then
		args+=(-r)
		shift
	fi
	for c in "$@"; do args+=(-c "$c"); done
	checks=$((checks + 1))
	if ! timeout 120 qemu-io -f raw "${args[@]}" "$(uri "$name")" >"$T/qio.out" 2>&1 ||
		grep -qiE "fail|error" "$T/qio.out"; then
		fail "qemu-io $*: $(head -c 600 "$T/qio.out")"
		return 1
	fi
}
