#!/usr/bin/env bash
# 2 hosts racing O_CREAT|O_EXCL and RENAME_NOREPLACE through vmfsmount
exec timeout -k 5 280 python3 "$(dirname "$0")/race.py"
