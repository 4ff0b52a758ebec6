#!/usr/bin/env bash
# vmfsmount of real VMFS5/6 images matches vmfs-fuse/vmfs6-fuse (skips without /dev/fuse).
exec timeout -k 5 240 python3 "$(dirname "$0")/fuse.py"
