#!/usr/bin/env bash
# vmfsctl ls/stat/cat/cp/tree on real VMFS5/6 images agree with debugvmfs/debugvmfs6.
exec timeout -k 5 280 python3 "$(dirname "$0")/oracle.py"
