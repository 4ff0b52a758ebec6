# checks.sh - counted checks for the shell tests of tests/install and
# tests/tools. Source it, then:
#   fail MESSAGE          report a failed check (stderr) and count it
#   check WHAT CMD...     run CMD; a non-zero status is a failure "WHAT"
#   checks_done           print "N checks, M failures"; status 0 iff none
# Scripts that count checks themselves bump $checks.
fails=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
check() { # check WHAT CMD...
	local what=$1
	shift
	checks=$((checks + 1))
	"$@" || fail "$what"
}
checks_done() {
	echo "$checks checks, $fails failures"
	[ "$fails" -eq 0 ]
}
