#!/usr/bin/env bash
# bench/iscsi/run.sh: on one istgt LUN and one tgt LUN (127.0.0.1, private
# directory), raw libiscsi (iscsi-perf, 4 KiB random reads at QD1 and QD32)
# beside the bdev backend (iscsi_bench: same reads, writes, 1 MiB sequential,
# ATS latency). Writes bench/results/iscsi.md. SECS per measurement: $SECS (5).
set -u
TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
B=${VMFS_BUILD:-$TOP/build}
V=$B/fuse-tools/vmfsctl
SECS=${SECS:-5}
. "$TOP/tests/iscsi/targets.sh"
need_cmds istgt tgtd tgtadm iscsi-inq iscsi-perf python3
TMP=$(mktemp -d /tmp/iscsi-bench.XXXXXX)
trap 'targets_stop; rm -rf "$TMP"' EXIT
dd if=/dev/urandom of="$TMP/a.img" bs=1M count=256 status=none
cp "$TMP/a.img" "$TMP/b.img"
istgt_start ist "$TMP/a.img" 512 || exit 1
tgt_start tgt "$TMP/b.img" || exit 1
perf() { # URL QD -> average IOPS of 4 KiB random reads
    timeout $((SECS + 20)) iscsi-perf -m "$2" -b 8 -r -t "$SECS" "$1" 2>&1 | tr '\r' '\n' |
        sed -n 's/.*iops average \([0-9]*\).*/\1/p' | tail -1
}
out=$TOP/bench/results/iscsi.md
{
    echo "# iSCSI backend vs raw libiscsi"
    echo
    echo "$(date -u +%F) on $(nproc) cores, ${SECS} s per measurement, 127.0.0.1; run with"
    echo "\`./run bench iscsi\` (or \`SECS=5 bash bench/iscsi/run.sh\`). Ratios are bdev / raw."
    echo "The bdev runs 32-request batches (bdev_submit waits for the whole batch),"
    echo "iscsi-perf keeps 32 in flight continuously. The file rows format the same"
    echo "LUN and use a 128 MiB eager-zeroed file (QD = threads calling vmfs_read/write);"
    echo "their ratios are file / raw libiscsi."
    echo
    echo "| target | measurement | raw libiscsi (iscsi-perf) | libvmfs bdev | ratio |"
    echo "|---|---|---|---|---|"
    for t in istgt tgt; do
        url=$ISTGT_URL
        [ $t = tgt ] && url=$TGT_URL
        r1=$(perf "$url" 1)
        r32=$(perf "$url" 32)
        declare -A m=()
        while read -r k v _; do m[$k]=$v; done < <(timeout $((SECS * 8 + 60)) "$B/bench/iscsi/iscsi_bench" "$url" "$SECS")
        ratio() { python3 -c "print('%.2f' % ($2 / $1) if $1 else '-')"; }
        echo "| $t | 4 KiB random read QD1 (IOPS) | $r1 | ${m[read4k_qd1]:-} | $(ratio "${r1:-0}" "${m[read4k_qd1]:-0}") |"
        echo "| $t | 4 KiB random read QD32 (IOPS) | $r32 | ${m[read4k_qd32]:-} | $(ratio "${r32:-0}" "${m[read4k_qd32]:-0}") |"
        echo "| $t | 4 KiB random write QD32 (IOPS) | | ${m[write4k_qd32]:-} | |"
        echo "| $t | 1 MiB sequential read, 8 in flight (MB/s) | | ${m[seqread_1m]:-} | |"
        echo "| $t | 1 MiB sequential write, 8 in flight (MB/s) | | ${m[seqwrite_1m]:-} | |"
        echo "| $t | ATS latency, uncontended (us), method ${m[method]:-} | | ${m[ats_us]:-} | |"
        # the same LUN formatted: a preallocated file through the library
        timeout 120 "$V" mkfs -q --force -H 8 --hb-interval 250 --hb-timeout 2000 "$url" >/dev/null
        while read -r k v _; do m[$k]=$v; done < <(timeout $((SECS * 8 + 120)) "$B/bench/iscsi/iscsi_bench" "$url" "$SECS" --file)
        echo "| $t | file: 4 KiB random read QD1 (IOPS) | $r1 | ${m[file_read4k_qd1]:-} | $(ratio "${r1:-0}" "${m[file_read4k_qd1]:-0}") |"
        echo "| $t | file: 4 KiB random read QD32 (IOPS, 32 threads) | $r32 | ${m[file_read4k_qd32]:-} | $(ratio "${r32:-0}" "${m[file_read4k_qd32]:-0}") |"
        echo "| $t | file: 4 KiB random write QD32 (IOPS, 32 threads) | | ${m[file_write4k_qd32]:-} | |"
        echo "| $t | file: 1 MiB sequential read, 8 threads (MB/s) | | ${m[file_seqread_1m]:-} | |"
        echo "| $t | file: 1 MiB sequential write, 8 threads (MB/s) | | ${m[file_seqwrite_1m]:-} | |"
        echo "| $t | file: open + close, lock acquire + release (us) | | ${m[file_open_close_us]:-} | |"
        echo "| $t | file: dead host's file opened for writing after (s), timeout 2 s | | ${m[file_takeover_s]:-} | |"
        unset m
    done
} | tee "$out"
