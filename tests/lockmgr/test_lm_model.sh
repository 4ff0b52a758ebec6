#!/usr/bin/env bash
# test_lm_model.sh - model check of the lock-manager protocol with SPIN
# (lockmgr/model/lockmgr.pml, docs/LOCKING.md "Model check"): 3 hosts,
# pauses, lease expiry, lost ATS replies; exhaustive search (no bitstate,
# state compression only) must end with 0 errors and a complete search.
# Four configurations (lockmgr.pml's comment): the base one, HANDOVER (the
# hand-over mark, a keeper), CONVERT (EX -> SH and SH -> EX) and JOIN
# (join-time reclaim of a dead host's slot on a full region, a reclaim
# sweep). Then each mutant must produce a violation of its property, to
# prove the check can fail: NO_PREEMPT (a backend without fencing: a write
# after takeover, P2), NO_REREAD (ATS errors taken as failures, issue 9
# defect 3: a leaked lock, P4), MARK_ONCE (a waiter marks once per acquire,
# not once per image: it waits forever behind a keeper, P5), CONV_NOWAIT (an
# upgrade that does not wait for the other holders, P1), JOIN_OLDGEN (the
# reclaimed slot goes LIVE with the dead owner's generation: its holder
# entry comes alive as the joiner's, P4). Skips (77) when spin is not
# installed ('./run' installs it).
set -u
SPIN=${SPIN:-$(command -v spin || true)}
[ -n "$SPIN" ] || { echo "spin not installed: skipped"; exit 77; }
MODEL=$(cd "$(dirname "$0")/../../lockmgr/model" && pwd)/lockmgr.pml
TMP=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/lmmodel.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# PAUSEMAX=1: one pause (or crash) at any point of any host; LOSTMAX=1: one
# lost ATS reply anywhere; HBMAX=1 heartbeat per host. About 34 million
# states in all (base 17.8, HANDOVER 4.2, CONVERT 5.2, JOIN 7.1), 1 GB.
PARAMS=${LM_MODEL_PARAMS:--DPAUSEMAX=1 -DLOSTMAX=1 -DHBMAX=1}

# check VARIANT-NAME DEFINES...: prints pan's summary into $TMP/NAME.out
check() {
	local name=$1
	shift
	mkdir -p "$TMP/$name"
	(cd "$TMP/$name" && cp "$MODEL" . && "$SPIN" $PARAMS "$@" -a lockmgr.pml >spin.out 2>&1 &&
		gcc ${OPT:--O2} -w -DSAFETY -DCOLLAPSE -DMEMLIM=4000 -o pan pan.c &&
		./pan -E -m2000000 >"$TMP/$name.out" 2>&1)
	grep -E "errors:|states, stored|elapsed|assertion violated|Search not completed" "$TMP/$name.out" |
		sed "s/^/$name: /"
}

# the base configuration, then one per feature (lockmgr.pml's comment)
for c in model HANDOVER CONVERT JOIN; do
	if [ $c = model ]; then check model; else check "$c" -D"$c"; fi
	grep -q "errors: 0" "$TMP/$c.out" || { cat "$TMP/$c.out"; echo "FAIL: $c has errors"; exit 1; }
	grep -q "Search not completed" "$TMP/$c.out" && { echo "FAIL: $c: search incomplete"; exit 1; }
	grep -q "Full statespace search" "$TMP/$c.out" || { echo "FAIL: $c: not a full search"; exit 1; }
done
# mutant, its configuration (- for the base one), the text of the
# assertion it must violate
while read -r m conf prop; do
	# short searches: an unoptimised pan compiles 5 times faster
	if [ "$conf" = - ]; then OPT=-O0 check "$m" -D"$m"; else OPT=-O0 check "$m" -D"$m" -D"$conf"; fi
	grep -qE "errors: [1-9]" "$TMP/$m.out" || { echo "FAIL: mutant $m not caught"; exit 1; }
	grep -qF "$prop" "$TMP/$m.out" || { echo "FAIL: $m: not the expected property ($prop)"; exit 1; }
done <<'EOF'
NO_PREEMPT - sst[i]==1
NO_REREAD - holds[k]==0
MARK_ONCE HANDOVER !(waiting[k])
CONV_NOWAIT CONVERT (want==2)&&(holds[k]==2)
JOIN_OLDGEN JOIN holds[k]==0
EOF
echo "lm_model: model verified (base, HANDOVER, CONVERT, JOIN); all mutants caught"
