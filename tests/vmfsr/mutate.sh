#!/usr/bin/env bash
# Seeded hostile mutations of real VMFS5/6 images: no crash, hang or sanitizer report.
exec timeout -k 5 580 python3 "$(dirname "$0")/mutate.py"
