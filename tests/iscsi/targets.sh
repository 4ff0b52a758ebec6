# targets.sh - start and stop private iSCSI targets (istgt, tgt) for tests.
# Source it from a test script after setting TMP (a private directory).
#
#   need_cmds istgt iscsi-inq          exit 77 unless every command exists
#   free_port                          prints a free TCP port on 127.0.0.1
#   istgt_start NAME IMG [BLOCKLEN] [CHAPUSER CHAPSECRET]
#                                      starts istgt in $TMP/NAME; sets
#                                      ISTGT_URL (iscsi://127.0.0.1:P/IQN/0)
#   istgt_restart NAME                 starts that istgt again after it died
#   istgt_write_conf DIR IMG BLOCKLEN PORTAL UCPORTAL NETMASK AUTH
#                                      an istgt.conf (for a target started
#                                      elsewhere, e.g. in a network namespace)
#   tgt_start NAME IMG                 starts tgtd; sets TGT_URL
#   targets_stop                       stops every target this script started
#                                      (by PID or control port, nothing else)
# Readiness is probed with iscsi-inq under timeout (iscsi-ls hangs against
# istgt); every wait is bounded.

TARGET_PIDS=()
TGT_CTLS=()
# Under ASan (./run asan): a known leak inside libiscsi, see lsan.supp.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lsan.supp"

need_cmds() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || {
            echo "SKIP: $c not installed"
            exit 77
        }
    done
}

# A port below the kernel's ephemeral range (ip_local_port_range): a port
# the kernel handed out (bind to 0) may be taken by any client connection
# (another test's initiator) before the target binds it.
free_port() {
    python3 - <<'EOF'
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(500):
    p = random.randrange(10000, max(lo, 10001))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
EOF
}

# wait_inq URL [CHAPURL]: until iscsi-inq answers (at most 20 s).
wait_inq() {
    local url=$1 i
    for i in $(seq 1 100); do
        timeout 5 iscsi-inq "$url" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "target at $url never answered" >&2
    return 1
}

# istgt_write_conf DIR IMG BLOCKLEN PORTAL UCPORTAL NETMASK AUTH: writes
# DIR/istgt.conf (pid file and media in DIR, which must hold auth.conf) for
# one LUN on IMG, listening on PORTAL (host:port), its control port on
# UCPORTAL, open to initiators in NETMASK; AUTH is the LUN's AuthMethod
# line(s).
istgt_write_conf() {
    local dir=$1 img=$2 blen=$3 portal=$4 uc=$5 mask=$6 auth=$7
    cat >"$dir/istgt.conf" <<EOF
[Global]
  NodeBase "iqn.2026-12.org.libvmfs.test"
  PidFile $dir/istgt.pid
  AuthFile $dir/auth.conf
  MediaDirectory $dir
  LogFacility "local7"
  Timeout 30
  NopInInterval 20
  DiscoveryAuthMethod None
  MaxSessions 64
  MaxConnections 4
  MaxR2T 32
  MaxOutstandingR2T 16
  DefaultTime2Wait 2
  DefaultTime2Retain 60
  FirstBurstLength 262144
  MaxBurstLength 1048576
  MaxRecvDataSegmentLength 262144
  InitialR2T Yes
  ImmediateData Yes
  DataPDUInOrder Yes
  DataSequenceInOrder Yes
  ErrorRecoveryLevel 0
[UnitControl]
  AuthMethod None
  Portal UC1 $uc
  Netmask 127.0.0.0/8
[PortalGroup1]
  Portal DA1 $portal
[InitiatorGroup1]
  InitiatorName "ALL"
  Netmask $mask
[LogicalUnit1]
  TargetName disk1
  Mapping PortalGroup1 InitiatorGroup1
  $auth
  UnitType Disk
  QueueDepth 32
  BlockLength $blen
  LUN0 Storage $img Auto
EOF
}

istgt_start() { # NAME IMG [BLOCKLEN] [USER SECRET]
    local try
    for try in 1 2 3 4 5; do
        istgt_try "$@" && return 0
        # another process took the port between the pick and the bind
        grep -q "listen error" "$TMP/$1/istgt.log" 2>/dev/null || return 1
        echo "istgt: port taken, retrying with another one" >&2
    done
    return 1
}

istgt_try() {
    local name=$1 img=$2 blen=${3:-512} user=${4:-} secret=${5:-}
    local dir=$TMP/$name port uport auth="AuthMethod None" probe i
    mkdir -p "$dir"
    port=$(free_port)
    uport=$(free_port)
    : >"$dir/auth.conf"
    if [ -n "$user" ]; then
        printf '[AuthGroup1]\n  Auth "%s" "%s"\n' "$user" "$secret" >"$dir/auth.conf"
        auth="AuthMethod CHAP
  AuthGroup AuthGroup1"
    fi
    istgt_write_conf "$dir" "$img" "$blen" "127.0.0.1:$port" "127.0.0.1:$uport" 127.0.0.0/8 \
        "$auth"
    istgt -c "$dir/istgt.conf" -D >"$dir/istgt.log" 2>&1 &
    TARGET_PIDS+=($!)
    ISTGT_PID=$!
    # listening, or gone: a listen error (the port was taken meanwhile:
    # maybe by another test's target, so a connect alone proves nothing)
    # is logged at once and istgt exits
    for i in $(seq 1 100); do
        if ! kill -0 "$ISTGT_PID" 2>/dev/null || grep -q "listen error" "$dir/istgt.log"; then
            kill "$ISTGT_PID" 2>/dev/null
            wait "$ISTGT_PID" 2>/dev/null
            unset 'TARGET_PIDS[-1]' # gone: its PID is not ours to stop any more
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            sleep 0.2
            kill -0 "$ISTGT_PID" 2>/dev/null && ! grep -q "listen error" "$dir/istgt.log" && break
        fi
        sleep 0.1
    done
    ISTGT_URL="iscsi://127.0.0.1:$port/iqn.2026-12.org.libvmfs.test:disk1/0"
    ISTGT_HOSTPORT="127.0.0.1:$port"
    probe=$ISTGT_URL
    [ -n "$user" ] && probe="iscsi://$user%$secret@127.0.0.1:$port/iqn.2026-12.org.libvmfs.test:disk1/0"
    wait_inq "$probe" || { cat "$dir/istgt.log" >&2; return 1; }
}

# istgt_restart NAME: starts the istgt of istgt_start NAME again (same
# configuration, same port) after it died or was killed; waits until it
# answers.
istgt_restart() {
    local dir=$TMP/$1
    wait "$ISTGT_PID" 2>/dev/null
    rm -f "$dir/istgt.pid"
    istgt -c "$dir/istgt.conf" -D >>"$dir/istgt.log" 2>&1 &
    TARGET_PIDS+=($!)
    ISTGT_PID=$!
    wait_inq "$ISTGT_URL"
}

tgt_start() { # NAME IMG
    local name=$1 img=$2 dir=$TMP/$1 port ctl
    mkdir -p "$dir" /var/run/tgtd
    port=$(free_port)
    # the control port is a number N: tgtd listens on a socket named by it
    ctl=$((1000 + RANDOM % 30000))
    while [ -e "/var/run/tgtd/socket.$ctl" ]; do ctl=$((1000 + RANDOM % 30000)); done
    tgtd -f -C "$ctl" --iscsi portal=127.0.0.1:"$port" >"$dir/tgtd.log" 2>&1 &
    TARGET_PIDS+=($!)
    TGT_PID=$!
    TGT_CTLS+=("$ctl")
    local i
    for i in $(seq 1 100); do
        tgtadm -C "$ctl" --lld iscsi --op show --mode target >/dev/null 2>&1 && break
        sleep 0.1
    done
    tgtadm -C "$ctl" --lld iscsi --op new --mode target --tid 1 -T iqn.2026-12.org.libvmfs.test:tgt1 &&
        tgtadm -C "$ctl" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$img" &&
        tgtadm -C "$ctl" --lld iscsi --op bind --mode target --tid 1 -I ALL || {
        cat "$dir/tgtd.log" >&2
        return 1
    }
    TGT_URL="iscsi://127.0.0.1:$port/iqn.2026-12.org.libvmfs.test:tgt1/1"
    wait_inq "$TGT_URL" || { cat "$dir/tgtd.log" >&2; return 1; }
}

targets_stop() {
    local c p i
    for c in "${TGT_CTLS[@]}"; do
        timeout 10 tgtadm -C "$c" --op update --mode sys --name State -v offline >/dev/null 2>&1
        timeout 10 tgtadm -C "$c" --lld iscsi --op delete --mode target --tid 1 --force >/dev/null 2>&1
        timeout 10 tgtadm -C "$c" --op delete --mode system >/dev/null 2>&1
    done
    TGT_CTLS=()
    for p in "${TARGET_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || continue
        kill "$p" 2>/dev/null
        kill -CONT "$p" 2>/dev/null # a test may have stopped it
        for i in $(seq 1 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    TARGET_PIDS=()
}
