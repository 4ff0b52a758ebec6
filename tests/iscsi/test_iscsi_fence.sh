#!/usr/bin/env bash
# Fencing on a SAN LUN (docs/LOCKING.md, "Fencing on SAN LUNs"):
#  - a host stopped past the timeout has its slot taken over and its
#    reservation key preempted; when it resumes, the target refuses its late
#    write (iscsi_fence.c);
#  - the tools: mkfs refuses a LUN that carries registrations unless
#    --force, which clears them; while a host is joined `vmfsctl hosts`
#    shows its key and `info` the registration (and, with COMPARE AND WRITE,
#    the write-exclusive reservation); after it leaves, no key is left.
# istgt (COMPARE AND WRITE, standing reservation) and tgt (the reservation
# as the ATS mutex: only the late ATS is refused).
set -u
B=${VMFS_BUILD:?VMFS_BUILD not set}
V=${VMFSCTL:?VMFSCTL not set}
. "$(dirname "$0")/targets.sh"
need_cmds istgt tgtd tgtadm iscsi-inq python3
TMP=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/iscsi-fence.XXXXXX")
HOLD=""
trap '[ -n "$HOLD" ] && kill "$HOLD" 2>/dev/null; targets_stop; rm -rf "$TMP"' EXIT
truncate -s 64M "$TMP/a.img"
truncate -s 64M "$TMP/b.img"
istgt_start ist "$TMP/a.img" 512 || exit 1
tgt_start tgt "$TMP/b.img" || exit 1
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
jget() { # FILE PYTHON-EXPR (of d)
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}
for mode in caw pr; do
    if [ $mode = caw ]; then url=$ISTGT_URL; else url=$TGT_URL; fi
    echo "== $mode: $url"
    timeout 400 "$B/tests/iscsi/iscsi_fence" "$url" $mode || fail "late writes on $url"
    # a host holds a lock: its registration is visible, mkfs refuses
    timeout 120 "$V" mkfs -q --force -H 8 -J 1M --hb-interval 250 --hb-timeout 2000 "$url" ||
        { fail "mkfs --force $url"; continue; }
    timeout 60 "$V" info --json "$url" >"$TMP/info0.json" || fail "info $url"
    [ "$(jget "$TMP/info0.json" 'd["reservation"]["keys"]')" = 0 ] ||
        fail "keys registered after mkfs --force: $(cat "$TMP/info0.json")"
    "$V" lock --host esx1 "$url" demo >"$TMP/lock.out" 2>&1 &
    HOLD=$!
    for _ in $(seq 600); do grep -q locked "$TMP/lock.out" && break; sleep 0.1; done
    grep -q locked "$TMP/lock.out" || fail "vmfsctl lock never locked: $(cat "$TMP/lock.out")"
    timeout 60 "$V" hosts --json "$url" >"$TMP/hosts.json" || fail "hosts $url"
    timeout 60 "$V" info --json "$url" >"$TMP/info1.json" || fail "info $url"
    timeout 60 "$V" hosts "$url" || fail "hosts (text) $url"
    key=$(jget "$TMP/hosts.json" '[s.get("pr_key") for s in d["slots"] if s["state"]=="live"]')
    echo "live hosts' keys: $key"
    [[ "$key" =~ ^\[\'[0-9a-f]{16}\'\]$ ]] || fail "hosts --json shows no key for esx1: $key"
    [ "$(jget "$TMP/info1.json" 'd["reservation"]["keys"]')" = 1 ] ||
        fail "info: not 1 key registered while esx1 is joined"
    if [ $mode = caw ]; then
        [ "$(jget "$TMP/info1.json" 'd["reservation"]["type"]')" = \
            "write exclusive - all registrants" ] || fail "info: no write-exclusive reservation"
    fi
    out=$(timeout 120 "$V" mkfs -q -H 8 "$url" 2>&1) && fail "mkfs of a LUN in use succeeded"
    echo "mkfs while a host is joined: $out"
    kill "$HOLD"
    wait "$HOLD"
    HOLD=""
    timeout 60 "$V" info --json "$url" >"$TMP/info2.json" || fail "info $url"
    [ "$(jget "$TMP/info2.json" 'd["reservation"]["keys"]')" = 0 ] ||
        fail "a key is left after the host left"
    timeout 120 "$V" fsck "$url" >/dev/null || fail "fsck of $url"
done
[ "$fails" = 0 ] && echo "1 passed, 0 failed" && exit 0
echo "0 passed, $fails failed"
exit 1
