#!/usr/bin/env bash
# Hosts in network namespaces (docs/LOCKING.md, "Fencing on SAN LUNs"): one
# namespace holds istgt behind a bridge, three hosts have a namespace and a
# veth link each. h1 holds a file open for writing (1 MiB fsync'd); its link
# goes down; h2 takes the file over (takeover after the heartbeat timeout:
# preempts h1's key, replays h1's journal) and rewrites it; h1's link comes
# back: h1 is fenced, its write through the file system fails and its raw
# write to the file's block on its own iSCSI session is refused by the
# target (RESERVATION CONFLICT); h3 reads h2's data intact, fsck is clean.
# Needs root (ip netns); skips (77) without it.
set -u
B=${VMFS_BUILD:?VMFS_BUILD not set}
V=${VMFSCTL:?VMFSCTL not set}
. "$(dirname "$0")/targets.sh"
need_cmds istgt iscsi-inq ip python3
TMP=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/iscsi-netns.XXXXXX")
ID=$$
NS_T=vmfs$ID-t
HOSTS=(h1 h2 h3)
PIDS=()
cleanup() {
    local p
    exec 7>&- 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    for h in t "${HOSTS[@]}"; do ip netns del "vmfs$ID-$h" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$NS_T" 2>/dev/null || { echo "SKIP: cannot create network namespaces"; exit 77; }
inns() { # NS-SUFFIX COMMAND...: run in one of our namespaces
    local n=$1
    shift
    ip netns exec "vmfs$ID-$n" "$@"
}
fail() {
    echo "FAIL: $*"
    exit 1
}
# the target's namespace: a bridge at 10.201.0.1/24
inns t ip link set lo up
inns t ip link add br0 type bridge
inns t ip addr add 10.201.0.1/24 dev br0
inns t ip link set br0 up
i=11
for h in "${HOSTS[@]}"; do
    ip netns add "vmfs$ID-$h"
    ip link add "v$ID$h" type veth peer name "p$ID$h"
    ip link set "v$ID$h" netns "$NS_T"
    ip link set "p$ID$h" netns "vmfs$ID-$h"
    inns t ip link set "v$ID$h" master br0 up
    inns "$h" ip link set lo up
    inns "$h" ip link set "p$ID$h" name eth0
    inns "$h" ip addr add "10.201.0.$i/24" dev eth0
    inns "$h" ip link set eth0 up
    i=$((i + 1))
done
# istgt in the target namespace (its own ports: no clash with the host's)
mkdir -p "$TMP/t"
truncate -s 64M "$TMP/lun.img"
: >"$TMP/t/auth.conf"
istgt_write_conf "$TMP/t" "$TMP/lun.img" 512 10.201.0.1:3260 127.0.0.1:3261 10.201.0.0/24 \
    "AuthMethod None"
ip netns exec "$NS_T" istgt -c "$TMP/t/istgt.conf" -D >"$TMP/t/istgt.log" 2>&1 &
PIDS+=($!)
URL=iscsi://10.201.0.1:3260/iqn.2026-12.org.libvmfs.test:disk1/0
ok=0
for _ in $(seq 100); do
    inns h3 timeout 5 iscsi-inq "$URL" >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.2
done
[ $ok = 1 ] || { cat "$TMP/t/istgt.log"; fail "the target never answered from h3"; }
inns h3 timeout 120 "$V" mkfs -q -H 8 -J 1M --hb-interval 250 --hb-timeout 2000 "$URL" ||
    fail "mkfs from h3"

# h1 holds /vm1.vmdk open for writing
mkfifo "$TMP/h1.in"
inns h1 "$B/tests/iscsi/iscsi_ns_host" hold "$URL" /vm1.vmdk esx1 <"$TMP/h1.in" \
    >"$TMP/h1.out" 2>"$TMP/h1.err" &
H1=$!
PIDS+=($H1)
exec 7>"$TMP/h1.in"
for _ in $(seq 600); do grep -q held "$TMP/h1.out" && break; sleep 0.1; done
grep -q held "$TMP/h1.out" || { cat "$TMP/h1.err"; fail "h1 never held the file"; }
echo "h1: $(cat "$TMP/h1.out")"
inns h3 timeout 60 "$V" hosts "$URL" | tee "$TMP/hosts1.txt"
grep -q "esx1 .* [0-9a-f]\{16\}$" "$TMP/hosts1.txt" || fail "hosts shows no key for esx1"

# cut h1 off; h2 takes the file over
inns h1 ip link set eth0 down
t0=$(date +%s.%N)
out=$(inns h2 timeout 180 "$B/tests/iscsi/iscsi_ns_host" take "$URL" /vm1.vmdk esx2) ||
    fail "h2 could not take the file over: $out"
t1=$(date +%s.%N)
echo "h2: $out after $(python3 -c "print(round($t1 - $t0, 1))") s"

# h1 comes back: fenced, and the target refuses its writes
inns h1 ip link set eth0 up
echo write >&7
echo raw >&7
for _ in $(seq 1800); do grep -q "^raw" "$TMP/h1.out" && break; sleep 0.1; done
echo "h1 after its link came back:"
cat "$TMP/h1.out"
grep -q "^write -" "$TMP/h1.out" || fail "h1's write through the file system succeeded"
grep -q "^raw -2005 " "$TMP/h1.out" || fail "the target did not refuse h1's raw write"
exec 7>&-
for _ in $(seq 600); do kill -0 $H1 2>/dev/null || break; sleep 0.1; done
kill -0 $H1 2>/dev/null && fail "h1 did not exit"
wait $H1 || { cat "$TMP/h1.err"; fail "h1 ended with an error"; }
grep -i "fenced\|reservation" "$TMP/h1.err" | head -3

out=$(inns h3 timeout 120 "$B/tests/iscsi/iscsi_ns_host" check "$URL" /vm1.vmdk esx3) ||
    fail "h3: the survivor's data is not intact: $out"
echo "h3: $out"
inns h3 timeout 120 "$V" fsck "$URL" || fail "fsck from h3 not clean"
echo "1 passed, 0 failed"
