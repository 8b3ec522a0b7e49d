#!/usr/bin/env bash
# Runs a test program under Oclgrind and fails when Oclgrind reports anything (it exits 0 even
# then). Usage: oclgrind_run.sh LOGFILE PROGRAM [ARGS...]
set -u
log=$1; shift
rm -f "$log"
# --uninitialized is not used: Oclgrind 21.10's checker aborts on LLVM's freeze instruction and
# reports data written at a buffer offset as uninitialised (false reports on every tensor view).
oclgrind --log "$log" --check-api --data-races "$@"
rc=$?
if [ $rc -ne 0 ]; then echo "oclgrind_run: program exited with $rc"; exit $rc; fi
if [ -s "$log" ]; then
  echo "oclgrind_run: Oclgrind reported errors (log $log):"; head -c 20000 "$log"; exit 1
fi
echo "oclgrind_run: clean"
