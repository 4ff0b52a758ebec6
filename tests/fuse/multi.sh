#!/usr/bin/env bash
# 2 and 4 hosts through vmfsmount at once: same tree everywhere, fsck clean
exec timeout -k 5 280 python3 "$(dirname "$0")/multi.py"
