#!/usr/bin/env bash
# deb (./run stress): the Debian packages. A copy of the source tree (no
# build directories, no .git) is built with `dpkg-buildpackage -b -us -uc`
# (debian/, debhelper 13, CMake; the symbols file must match the library
# exactly: DPKG_GENSYMBOLS_CHECK_LEVEL=4). Checks with dpkg-deb -c that
# libvmfs0 holds the library, libvmfs-dev the headers, the libvmfs.so link
# and libvmfs.pc, vmfs-cluster-tools the tools, the mount helper, the man
# pages and the nbdkit plugin, each file in one package only and nothing
# else in them, and none that Debian's vmfs-tools or vmfs6-tools holds;
# the version is the CMake project's; the dependencies; and,
# from the unpacked packages: the soname, the .pc paths (/usr, multiarch),
# the helper's path to /usr/sbin/vmfsmount, and the example program built
# with pkg-config against them listing a volume made by their vmfsctl.
# Takes a minute or a few (the libraries and tools only; no tests).
set -u
VERSION=${VMFS_VERSION:?VMFS_VERSION not set}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
for c in dpkg-buildpackage dh dpkg-deb dpkg-architecture dpkg-parsechangelog pkg-config cc; do
	command -v "$c" >/dev/null || {
		echo "SKIP: $c not installed (debhelper, dpkg-dev: ./run stress installs them)"
		exit 77
	}
done
T=$(mktemp -d "${VMFS_TEST_TMP:-/tmp}/deb.XXXXXX")
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/../checks.sh"

got=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
check "debian/changelog is at version '$got', the project at '$VERSION'" test "${got%%-*}" = "$VERSION"

mkdir "$T/libvmfs"
tar -C "$SRC" --exclude=./.git --exclude=./build --exclude='./build-*' --exclude='./obj-*' \
	--exclude=./debian/tmp -cf - . | tar -C "$T/libvmfs" -xf -
echo "building the packages in $T/libvmfs (log: build.log)"
(cd "$T/libvmfs" && DEB_BUILD_OPTIONS="parallel=$(nproc) noautodbgsym" DPKG_GENSYMBOLS_CHECK_LEVEL=4 \
	timeout 1500 dpkg-buildpackage -b -us -uc) >"$T/build.log" 2>&1
rc=$?
if [ $rc != 0 ]; then
	tail -40 "$T/build.log" >&2
	echo "FAIL: dpkg-buildpackage -b -us -uc exited $rc" >&2
	exit 1
fi

ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
L=usr/lib/$MA
declare -A want=(
	[libvmfs0]="$L/libvmfs.so.0 $L/libvmfs.so.$VERSION"
	[libvmfs-dev]="usr/include/libvmfs/vmfs.h usr/include/libvmfs/vmfsr.h
		usr/include/libvmfs/bdev.h $L/libvmfs.so $L/pkgconfig/libvmfs.pc"
	[vmfs-cluster-tools]="usr/sbin/vmfsctl usr/sbin/vmfsmount usr/sbin/mount.fuse.vmfs
		usr/share/man/man8/vmfsctl.8.gz usr/share/man/man8/vmfsmount.8.gz
		usr/share/man/man8/mount.fuse.vmfs.8.gz usr/lib/nbdkit/plugins/nbdkit-vmfs-plugin.so"
)
for p in "${!want[@]}"; do
	deb=$T/${p}_${VERSION}_$ARCH.deb
	if [ ! -f "$deb" ]; then
		fail "package $p was not built ($(cd "$T" && echo *.deb))"
		continue
	fi
	# files and links, without directories and the package's own docs
	dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./||' |
		grep -v "^usr/share/doc/$p/" | sort >"$T/$p.files"
	tr -s ' \t\n' '\n' <<<"${want[$p]}" | grep . | sort >"$T/$p.want"
	checks=$((checks + 1))
	if ! cmp -s "$T/$p.files" "$T/$p.want"; then
		fail "package $p holds other files than expected:"
		comm -13 "$T/$p.files" "$T/$p.want" | sed 's/^/  missing: /' >&2
		comm -23 "$T/$p.files" "$T/$p.want" | sed 's/^/  not expected: /' >&2
	fi
	dpkg-deb -x "$deb" "$T/root"
done

# No clash with Debian's VMFS readers: no file of theirs in ours (checked
# against the installed ones; ./run installs both).
for p in vmfs-tools vmfs6-tools; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
		echo "note: $p is not installed: no clash check against it"
		continue
	}
	dpkg -L "$p" | sed 's|^/||' | sort >"$T/$p.theirs"
	clash=$(cat "$T"/*.files | sort | comm -12 - "$T/$p.theirs")
	check "files both in $p and in our packages: $clash" test -z "$clash"
done

deps=$(dpkg-deb -f "$T/libvmfs-dev_${VERSION}_$ARCH.deb" Depends 2>&1)
check "libvmfs-dev does not depend on libvmfs0 (= $VERSION): $deps" \
	eval 'grep -q "libvmfs0 (= $VERSION)" <<<"$deps"'
deps=$(dpkg-deb -f "$T/vmfs-cluster-tools_${VERSION}_$ARCH.deb" Depends 2>&1)
check "vmfs-cluster-tools does not depend on fuse3: $deps" eval 'grep -qw fuse3 <<<"$deps"'

# The unpacked packages.
R=$T/root
soname=$(readelf -d "$R/$L/libvmfs.so.$VERSION" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
check "soname of the packaged library: '$soname'" test "$soname" = libvmfs.so.0
pc=$R/$L/pkgconfig/libvmfs.pc
check "libvmfs.pc: prefix is not /usr: $(grep ^prefix= "$pc")" grep -qx 'prefix=/usr' "$pc"
check "libvmfs.pc: libdir is not \${prefix}/lib/$MA: $(grep ^libdir= "$pc")" \
	grep -qxF "libdir=\${prefix}/lib/$MA" "$pc"
check "mount.fuse.vmfs does not run /usr/sbin/vmfsmount" \
	grep -qx "VMFSMOUNT='/usr/sbin/vmfsmount'" "$R/usr/sbin/mount.fuse.vmfs"
check "vmfsctl.8.gz is not the man page" eval 'zcat "$R/usr/share/man/man8/vmfsctl.8.gz" | grep -q "^\.TH VMFSCTL 8"'
got=$("$R/usr/sbin/vmfsctl" --version 2>&1)
check "packaged vmfsctl --version: '$got'" test "$got" = "vmfsctl (libvmfs) $VERSION"

# The example, built with pkg-config against the unpacked libvmfs-dev.
export PKG_CONFIG_PATH=$R/$L/pkgconfig PKG_CONFIG_SYSROOT_DIR=$R
read -r -a FLAGS <<<"$(pkg-config --cflags --libs libvmfs)"
if cc -Wall -Wextra -Werror -o "$T/example" "$SRC/tests/install/example.c" "${FLAGS[@]}" \
	2>"$T/cc.log"; then
	truncate -s 512M "$T/lun.img"
	"$R/usr/sbin/vmfsctl" mkfs -q -H 4 -J 1M "$T/lun.img" >/dev/null &&
		"$R/usr/sbin/vmfsctl" mkdir "$T/lun.img" /from-deb
	got=$(env -i LD_LIBRARY_PATH="$R/$L" "$T/example" "$T/lun.img" 2>&1 | sort | tr '\n' ' ')
	check "the example on the packages listed '$got'" test "$got" = ". .. from-deb "
else
	fail "the example does not build against libvmfs-dev: $(head -c 600 "$T/cc.log")"
fi

checks_done
