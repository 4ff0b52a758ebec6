#!/usr/bin/env bash
# The man pages (docs/man, as configured into the build tree) cannot drift
# from the tools: every command `vmfsctl --help` lists has a section (.SS)
# in vmfsctl.8, and every option and vdisk subcommand its `--help` names
# appears in that section; every option of `vmfsmount --help` and of
# `mount.fuse.vmfs --help`, every -o option vmfsmount's parser accepts
# (parse_opts() in fuse-tools/fusemount.c) and every option the helper
# drops (its template) appears in vmfsmount.8. Each page renders with
# `man -l` and with groff, warnings on, and neither says anything on
# stderr.
set -u
V=${VMFSCTL:?VMFSCTL not set}
B=${VMFS_BUILD:?VMFS_BUILD not set}
D=$(dirname "$V")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MAN=$B/docs/man
T=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/man.XXXXXX")
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/../checks.sh"

# The text of a page without roff escapes: \- is -, fonts and \& go.
plain() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' -e 's/\\(..//g' "$1"
}
# The lines of section NAME (.SS or .SH NAME up to the next heading).
section() { # section FILE MACRO NAME
	awk -v m="$2" -v n="$3" '/^\.S[SH] / {on = ($1 == m && substr($0, 5) == n); next} on' "$1"
}
# has TEXT WORD: WORD occurs in TEXT, not as part of a longer option or name
has() {
	grep -Eq -- "(^|[^-A-Za-z0-9_])$(sed 's/[.[*^$]/\\&/g' <<<"$2")([^-A-Za-z0-9_]|\$)" <<<"$1"
}
# The options in a --help text: -x and --long words
options_of() {
	grep -oE -- '(^|[][ |,(])--?[A-Za-z][-A-Za-z]*' | sed 's/^[][ |,(]//' | sort -u
}
expect() { # expect WHAT TEXT WORD
	checks=$((checks + 1))
	has "$2" "$3" || fail "$1: '$3' is not documented"
}

# ---- rendering ----
render() { # render PAGE: renders with man -l and groff, no warnings
	local page=$1 out
	if command -v man >/dev/null; then
		checks=$((checks + 1))
		LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -E UTF-8 -l "$page" >"$T/out" 2>"$T/err"
		if [ $? != 0 ] || [ -s "$T/err" ] || ! grep -q '^NAME' "$T/out"; then
			fail "man -l $page: $(head -c 600 "$T/err")"
		fi
	fi
	if command -v groff >/dev/null; then
		checks=$((checks + 1))
		out=$(groff -man -ww -z "$page" 2>&1)
		[ -z "$out" ] || fail "groff -man -ww $page: $(head -c 600 <<<"$out")"
	fi
}
command -v man >/dev/null || command -v groff >/dev/null || {
	echo "SKIP: neither man nor groff is installed (man-db, groff-base)"
	exit 77
}
render "$MAN/vmfsctl.8"

# ---- vmfsctl.8 ----
cmds=$("$V" --help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on = 0}')
[ -n "$cmds" ] || {
	echo "FAIL: no commands in 'vmfsctl --help'" >&2
	exit 1
}
plain "$MAN/vmfsctl.8" >"$T/vmfsctl.8"
page=$(cat "$T/vmfsctl.8")
for o in --help --version; do expect "vmfsctl.8" "$page" "$o"; done
n=0
for c in $cmds; do
	sec=$(section "$T/vmfsctl.8" .SS "$c")
	checks=$((checks + 1))
	if [ -z "$sec" ]; then
		fail "vmfsctl.8 has no section '.SS $c' for the command $c"
		continue
	fi
	"$V" "$c" --help >"$T/help" 2>&1
	for o in $(options_of <"$T/help"); do
		[ "$o" = --help ] && continue
		expect "vmfsctl.8, section $c" "$sec" "$o"
		n=$((n + 1))
	done
	# subcommands (vdisk): indented words that start a line of the help
	for s in $(sed -nE 's/^  ([a-z]+) .*/\1/p' "$T/help"); do
		expect "vmfsctl.8, section $c" "$sec" "$s"
		n=$((n + 1))
	done
done
echo "vmfsctl.8: $(wc -w <<<"$cmds") commands, $n options and subcommands"

# ---- vmfsmount.8 ----
if [ -x "$D/vmfsmount" ]; then
	render "$MAN/vmfsmount.8"
	plain "$MAN/vmfsmount.8" >"$T/vmfsmount.8"
	page=$(cat "$T/vmfsmount.8")
	"$D/vmfsmount" --help >"$T/help" 2>&1
	for o in $(options_of <"$T/help") -h --help; do
		expect "vmfsmount.8 (vmfsmount --help)" "$page" "$o"
	done
	# -o options: those --help names and those parse_opts() compares
	mopts=$( (
		grep -oE -- '-o [a-z_]+(=[A-Z]+)?(,[a-z_]+=[A-Z]+)*' "$T/help" | cut -c4- | tr ',' '\n'
		sed -n '/^static int parse_opts/,/^}/p' "$SRC/fuse-tools/fusemount.c" |
			grep -oE 'strn?cmp\(o, "[a-z_]+' | sed 's/.*"//'
	) | sed 's/=.*//' | sort -u)
	checks=$((checks + 1))
	[ "$(wc -w <<<"$mopts")" -ge 8 ] || fail "found only these -o options: $mopts"
	sec=$(section "$T/vmfsmount.8" .SH "MOUNT OPTIONS")
	for o in $mopts; do expect "vmfsmount.8, MOUNT OPTIONS" "$sec" "$o"; done
	# the helper: its options, and the options it drops
	sec=$(section "$T/vmfsmount.8" .SH "MOUNT(8) AND FSTAB")
	"$D/mount.fuse.vmfs" --help >"$T/help" 2>&1
	for o in $(sed -nE 's/^  (-[^ ]*).*/\1/p' "$T/help" | tr ',' ' '); do
		expect "vmfsmount.8, MOUNT(8) AND FSTAB (mount.fuse.vmfs --help)" "$sec" "$o"
	done
	dropped=$(sed -n '/case \$o in/,/\*) keep=/p' "$SRC/fuse-tools/mount.fuse.vmfs.in" |
		grep -v -e 'case ' -e 'keep=' | tr -d '\\\t ' | tr '|' '\n' | sed 's/)*;;$//; s/\*$//' |
		grep -v "^''$" | grep .)
	checks=$((checks + 1))
	[ "$(wc -w <<<"$dropped")" -ge 10 ] || fail "found only these dropped options: $dropped"
	for o in $dropped; do
		checks=$((checks + 1))
		grep -qF -- "$o" <<<"$sec" || fail "vmfsmount.8: the helper drops '$o': not documented"
	done
	echo "vmfsmount.8: -o options $(echo $mopts); dropped by the helper: $(echo $dropped)"
fi

checks_done
