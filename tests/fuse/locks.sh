#!/usr/bin/env bash
# open-file locks (EBUSY), data across hosts, -o ro, SIGTERM, vmfsmount errors
exec timeout -k 5 280 python3 "$(dirname "$0")/locks.py"
