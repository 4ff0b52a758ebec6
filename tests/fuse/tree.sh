#!/usr/bin/env bash
# A tree of many small files copied onto a fresh 8 GiB volume through
# vmfsmount: resources grow, the copy is identical, rm -rf gives them back
exec timeout -k 5 "${TREE_TIMEOUT:-1100}" python3 "$(dirname "$0")/tree.py"
