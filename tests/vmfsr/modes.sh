#!/usr/bin/env bash
# Crafted pointer-block, double-indirect, TBZ, hole and VMFS6 SFB files read right.
exec timeout -k 5 280 python3 "$(dirname "$0")/modes.py"
