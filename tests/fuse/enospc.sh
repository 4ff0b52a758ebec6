#!/usr/bin/env bash
# ENOSPC through vmfsmount on a 64 MiB volume, space back after rm
exec timeout -k 5 280 python3 "$(dirname "$0")/enospc.py"
