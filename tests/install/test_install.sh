#!/usr/bin/env bash
# install: `cmake --install` of this build into a temporary prefix P, then
# what a user of the installed library does. Checks: the files are where
# the README's Install section says (P/lib, P/include/libvmfs, P/sbin,
# P/share/man/man8, where man finds the pages);
# the installed tools print the project's version; the library's soname is
# libvmfs.so.0 (libvmfs.so -> libvmfs.so.0 -> libvmfs.so.0.<minor>.<patch>),
# it needs nothing that is not found and
# exports exactly the functions declared in the installed headers; each
# header compiles on its own; the example program tests/install/example.c,
# built with `pkg-config --cflags --libs libvmfs`, has no RPATH and, run
# with LD_LIBRARY_PATH=P/lib as its only environment, lists / of a volume
# made and filled by the installed vmfsctl. Everything lives in a scratch
# directory that the EXIT trap removes.
set -u
B=${VMFS_BUILD:?VMFS_BUILD not set}
VERSION=${VMFS_VERSION:?VMFS_VERSION not set}
HERE=$(cd "$(dirname "$0")" && pwd)
for c in cc readelf nm pkg-config ldd; do
	command -v "$c" >/dev/null || {
		echo "SKIP: $c not installed"
		exit 77
	}
done
T=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/install.XXXXXX")
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/../checks.sh"

P=$T/prefix
if ! timeout 120 cmake --install "$B" --prefix "$P" >"$T/install.log" 2>&1; then
	cat "$T/install.log" >&2
	echo "FAIL: cmake --install $B --prefix $P failed" >&2
	exit 1
fi

# --- the files ---
for f in sbin/vmfsctl sbin/vmfsmount sbin/mount.fuse.vmfs \
	include/libvmfs/vmfs.h include/libvmfs/vmfsr.h include/libvmfs/bdev.h; do
	check "$f is not installed" test -f "$P/$f"
done
mapfile -t pcs < <(find "$P" -path '*/pkgconfig/libvmfs.pc')
if [ ${#pcs[@]} -ne 1 ]; then
	echo "FAIL: expected one libvmfs.pc under $P, found ${#pcs[@]}: ${pcs[*]}" >&2
	exit 1
fi
LIBDIR=$(dirname "$(dirname "${pcs[0]}")")
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
check "pkg-config does not know libvmfs from $PKG_CONFIG_PATH" pkg-config --exists libvmfs
got=$(pkg-config --modversion libvmfs)
check "pkg-config --modversion: got '$got', want '$VERSION'" test "$got" = "$VERSION"
got=$(pkg-config --variable=libdir libvmfs)
check "libvmfs.pc libdir: got '$got', want '$LIBDIR'" test "$got" = "$LIBDIR"

for p in vmfsctl vmfsmount mount.fuse.vmfs; do
	check "man page $p(8) is not installed" test -f "$P/share/man/man8/$p.8"
done
# man finds them there (mount.fuse.vmfs(8) is vmfsmount(8))
if command -v man >/dev/null; then
	for p in vmfsctl vmfsmount mount.fuse.vmfs; do
		want=$p
		[ $p = mount.fuse.vmfs ] && want=vmfsmount
		got=$(LC_ALL=C MANWIDTH=80 man -M "$P/share/man" 8 "$p" 2>&1 | head -1)
		check "man -M P/share/man 8 $p: '$got'" eval '[[ "$got" == "${want^^}(8)"* ]]'
	done
fi
for t in vmfsctl vmfsmount mount.fuse.vmfs; do
	got=$("$P/sbin/$t" --version 2>&1)
	check "installed $t --version: got '$got'" test "$got" = "$t (libvmfs) $VERSION"
done

# --- the library ---
LIB=$LIBDIR/libvmfs.so.$VERSION
check "$LIB is not installed" test -f "$LIB"
check "libvmfs.so.0 is not a link to libvmfs.so.$VERSION" \
	test "$(readlink "$LIBDIR/libvmfs.so.0")" = "libvmfs.so.$VERSION"
check "libvmfs.so is not a link to libvmfs.so.0" test "$(readlink "$LIBDIR/libvmfs.so")" = libvmfs.so.0
soname=$(readelf -d "$LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
check "soname: got '$soname', want 'libvmfs.so.0'" test "$soname" = libvmfs.so.0
rpath=$(readelf -d "$LIB" | grep -E 'RPATH|RUNPATH')
check "the library has an RPATH: $rpath" test -z "$rpath"
ldd "$LIB" >"$T/ldd.out" 2>&1
check "the library needs libraries that are not found: $(grep 'not found' "$T/ldd.out")" \
	eval '! grep -q "not found" "$T/ldd.out"'

# Exported: the functions the installed headers declare (names with the
# header's prefix followed by '(', comments stripped), and nothing more.
for h in vmfs vmfsr bdev; do
	gcc -fpreprocessed -dD -E -P "$P/include/libvmfs/$h.h" | grep -v '^#' | tr '\n' ' ' |
		grep -oE "\\b${h}_[A-Za-z0-9_]*[[:space:]]*\\(" | tr -d '( '
done | sort -u >"$T/declared"
nm -D --defined-only "$LIB" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' |
	sort -u >"$T/exported"
check "no functions found in the installed headers" test -s "$T/declared"
if ! cmp -s "$T/declared" "$T/exported"; then
	fail "exported symbols differ from the installed headers' functions (libvmfs/libvmfs.map):"
	comm -23 "$T/declared" "$T/exported" | sed 's/^/  declared, not exported: /' >&2
	comm -13 "$T/declared" "$T/exported" | sed 's/^/  exported, not declared: /' >&2
fi
checks=$((checks + 1))

# --- a program built against the installed library ---
read -r -a CFLAGS <<<"$(pkg-config --cflags libvmfs)"
read -r -a LIBS <<<"$(pkg-config --libs libvmfs)"
SAN=()
[ "${VMFS_SANITIZE:-}" = ON ] && SAN=(-fsanitize=address,undefined)
for h in vmfs vmfsr bdev; do
	printf '#include <%s.h>\n' "$h" >"$T/h_$h.c"
	check "$h.h does not compile on its own: $(cc -std=c11 -pedantic -Wall -Wextra -Werror \
		"${CFLAGS[@]}" -fsyntax-only "$T/h_$h.c" 2>&1 | head -5)" \
		cc -std=c11 -pedantic -Wall -Wextra -Werror "${CFLAGS[@]}" -fsyntax-only "$T/h_$h.c"
done
if ! cc -Wall -Wextra -Werror "${SAN[@]}" -o "$T/example" "$HERE/example.c" "${CFLAGS[@]}" \
	"${LIBS[@]}" 2>"$T/cc.log"; then
	cat "$T/cc.log" >&2
	echo "FAIL: the example does not build with pkg-config --cflags --libs libvmfs" >&2
	exit 1
fi
rpath=$(readelf -d "$T/example" | grep -E 'RPATH|RUNPATH')
check "the example has an RPATH: $rpath" test -z "$rpath"
check "the example does not need libvmfs.so.0" eval \
	'readelf -d "$T/example" | grep -q "NEEDED.*\[libvmfs.so.0\]"'
got=$(env -i LD_LIBRARY_PATH="$LIBDIR" ldd "$T/example" | awk '$1 == "libvmfs.so.0" { print $3 }')
check "the example loads libvmfs.so.0 from '$got', not $LIBDIR" test "$got" = "$LIBDIR/libvmfs.so.0"
if ldconfig -p | grep -q 'libvmfs\.so\.0 '; then
	echo "note: a libvmfs.so.0 is installed system-wide: not checking that the example needs LD_LIBRARY_PATH"
else
	env -i "$T/example" /dev/null >"$T/nolib.out" 2>&1
	rc=$?
	check "without LD_LIBRARY_PATH the example ran (rc $rc): $(head -c 300 "$T/nolib.out")" \
		eval '[ $rc = 127 ] && grep -q "libvmfs.so.0" "$T/nolib.out"'
fi

# A volume made by the installed vmfsctl: a directory, a copied file, a
# thick file.
V=$P/sbin/vmfsctl
IMG=$T/lun.img
echo "hello from the install test" >"$T/hello.txt"
truncate -s 512M "$IMG"
for cmd in "mkfs -q -H 4 -J 1M $IMG" "mkdir $IMG /vms" "cp -q $T/hello.txt $IMG:/hello.txt" \
	"mkfile -t lazy $IMG /disk.raw 4M"; do
	# shellcheck disable=SC2086 # the words are the arguments
	if ! "$V" $cmd >"$T/v.out" 2>&1; then
		cat "$T/v.out" >&2
		echo "FAIL: vmfsctl $cmd" >&2
		exit 1
	fi
done
env -i LD_LIBRARY_PATH="$LIBDIR" "$T/example" "$IMG" >"$T/ls.out" 2>"$T/ls.err"
rc=$?
check "the example failed (rc $rc): $(head -c 300 "$T/ls.err")" test $rc = 0
got=$(sort "$T/ls.out" | tr '\n' ' ')
want=". .. disk.raw hello.txt vms "
check "the example listed '$got', want '$want'" test "$got" = "$want"
# ... and says why on something that is not a volume
truncate -s 1M "$T/zero.img"
env -i LD_LIBRARY_PATH="$LIBDIR" "$T/example" "$T/zero.img" >"$T/bad.out" 2>&1
rc=$?
check "the example on a zero image: rc $rc, '$(head -c 200 "$T/bad.out")'" \
	eval '[ $rc = 1 ] && grep -q "zero.img: " "$T/bad.out"'

checks_done
