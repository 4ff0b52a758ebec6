#!/usr/bin/env bash
# ext4 vs vmfsmount POSIX battery (skips without /dev/fuse)
exec timeout -k 5 280 python3 "$(dirname "$0")/posix.py"
