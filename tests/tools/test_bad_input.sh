#!/usr/bin/env bash
# Bad input to EVERY vmfsctl command in the build (taken from `vmfsctl
# --help` at run time): a missing file, a formatted image truncated to
# 1.5 MiB, 20 MiB of random garbage, a zero-length file, no device, and an
# unknown option. Each run must exit non-zero but below 128 (no crash, no
# hang), print exactly one line on stderr, and show no sanitizer report.
# Each command must also answer --help with exit 0.
set -u
V=${VMFSCTL:?VMFSCTL not set}
T=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/format-bad.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

cmds=$("$V" --help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on = 0}')
[ -n "$cmds" ] || { echo "no commands found in 'vmfsctl --help'" >&2; exit 1; }

# Inputs.
truncate -s 1G "$T/full.img"
"$V" mkfs -q -H 2 -J 256K "$T/full.img" >/dev/null 2>&1 || { echo "mkfs failed" >&2; exit 1; }
head -c 1572864 "$T/full.img" >"$T/trunc.img"
rm -f "$T/full.img"
head -c 20M /dev/urandom >"$T/garbage.img"
: >"$T/empty.img"

check() { # check LABEL CMD ARGS...
	local label=$1 rc lines
	shift
	timeout -k 5 30 "$V" "$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	lines=$(wc -l <"$T/err")
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		fail "vmfsctl $* ($label): hung (killed after 30 s)"
	elif [ "$rc" -ge 128 ]; then
		fail "vmfsctl $* ($label): crashed with exit $rc"
	elif [ "$rc" = 0 ]; then
		fail "vmfsctl $* ($label): exit 0 on bad input"
	fi
	if grep -Eq "Segmentation fault|AddressSanitizer|LeakSanitizer|runtime error|Assertion" "$T/out" "$T/err"; then
		fail "vmfsctl $* ($label): sanitizer/crash report: $(grep -Eh 'ERROR|runtime error|Assertion' "$T/err" | head -2)"
	elif [ "$lines" != 1 ]; then
		fail "vmfsctl $* ($label): $lines lines on stderr, expected one: $(head -3 "$T/err" | tr '\n' '|')"
	fi
}

for c in $cmds; do
	if ! timeout 30 "$V" "$c" --help >"$T/out" 2>&1 || ! grep -qi "usage" "$T/out"; then
		fail "vmfsctl $c --help does not print usage with exit 0"
	fi
	check "missing file" "$c" "$T/does-not-exist.img"
	check "truncated image" "$c" "$T/trunc.img"
	check "random garbage" "$c" "$T/garbage.img"
	check "zero-length file" "$c" "$T/empty.img"
	check "no device" "$c"
	check "unknown option" "$c" --no-such-option "$T/trunc.img"
	# A directory or an nbd:// URI where the volume goes: the error names it.
	for d in "$T" "nbd://localhost/export"; do
		case $c in
		lock | unlock) args=("$d" NAME) ;;
		stat | cat | mkdir | rm) args=("$d" /x) ;;
		mkfile) args=("$d" /x 1M) ;;
		cp) args=("$d:/x" "$T/cp-out") ;;
		vdisk) args=(info "$d:/x.vmdk") ;;
		*) args=("$d") ;;
		esac
		[ "$d" = "$T" ] && want="Is a directory" || want="unknown device URI scheme"
		check "$want" "$c" "${args[@]}"
		grep -q "$want" "$T/err" || fail "vmfsctl $c ${args[*]}: $(cat "$T/err") (expected '$want')"
	done
	# every option of the usage lines is also explained below them
	timeout 30 "$V" "$c" --help >"$T/out" 2>&1
	for o in $(grep -i "^ *usage:\|^       vmfsctl" "$T/out" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		[ "$(grep -c -- "$o" "$T/out")" -ge 2 ] ||
			fail "vmfsctl $c --help: $o is in the usage line but never explained"
	done
done

[ "$fails" = 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "bad input: all checks passed for: $(echo $cmds)"
