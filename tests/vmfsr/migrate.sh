#!/usr/bin/env bash
# Migration: files of real VMFS5/6 images copied into a native volume read back bit-exact.
exec timeout -k 5 280 python3 "$(dirname "$0")/migrate.py"
