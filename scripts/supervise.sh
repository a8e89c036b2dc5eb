#!/usr/bin/env bash
# Run a command and start it again whenever it fails, saying why on stdout, as systemd's
# Restart=on-failure does for deploy/systemd/medal-worker.service; `make demo` runs the worker so.
# SIGTERM or SIGINT stops the command, then this script. A command that exits 0 was asked to stop.
# Usage: scripts/supervise.sh COMMAND [ARGS...]   (SUPERVISE_RESTART_SECONDS, default 10, as RestartSec)
set -uo pipefail
delay="${SUPERVISE_RESTART_SECONDS:-10}"
name="$(basename "$1")${2:+ $2}"
child=""
pause=""

say() { echo "$(date -u '+%Y-%m-%d %H:%M:%S') supervise: $*"; }

stop() {
  [[ -n "$pause" ]] && kill "$pause" 2>/dev/null
  if [[ -n "$child" ]]; then
    kill -TERM "$child" 2>/dev/null
    wait "$child"
  fi
  say "stopped ($name${child:+, pid $child})"
  exit 0
}
trap stop TERM INT

while true; do
  "$@" &
  child=$!
  wait "$child"
  code=$?
  if [[ $code -eq 0 ]]; then
    say "$name (pid $child) exited normally"
    exit 0
  fi
  if [[ $code -gt 128 ]]; then
    why="killed by signal $((code - 128)) ($(kill -l $((code - 128))))"
  else
    why="exited with status $code"
  fi
  say "$name (pid $child) $why; starting it again in $delay s"
  child=""
  sleep "$delay" &
  pause=$!
  wait "$pause"
  pause=""
done
