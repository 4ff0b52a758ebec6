#!/usr/bin/env bash
# Every C source and header of the project is formatted as .clang-format says.
# Skips (77) where clang-format is not installed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
command -v clang-format >/dev/null || { echo "SKIP: clang-format not installed"; exit 77; }
cd "$top"
bad=0
n=0
while IFS= read -r f; do
	n=$((n + 1))
	if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f (run: clang-format -i $f)"
		bad=$((bad + 1))
	fi
done < <(find iscsi lockmgr libvmfs fuse-tools hypervisor-glue bench tests \
	-name '*.[ch]' -not -path '*/build*' | sort)
echo "clang-format: $n files checked, $bad not formatted"
[ "$n" -gt 0 ] && [ "$bad" = 0 ]
