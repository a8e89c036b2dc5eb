#!/usr/bin/env bash
# Migrate, load the demo, start the worker and the web app in the background, print URL and logins.
# `scripts/demo.sh stop` stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOME_DIR="${MEDAL_HOME:-$PWD/instance}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-5000}"
mkdir -p "$HOME_DIR"
export MEDAL_HOME="$HOME_DIR"

stop() {
  for name in web worker; do
    pidfile="$HOME_DIR/$name.pid"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      kill "$(cat "$pidfile")" && echo "stopped $name"
    fi
    rm -f "$pidfile"
  done
}

if [[ "${1:-}" == "stop" ]]; then stop; exit 0; fi
stop >/dev/null 2>&1 || true

started=$(date +%s)
$BIN/medal db upgrade
$BIN/medal demo
# supervised: a worker that fails is started again and the log says why (as systemd does in deploy/);
# worker.pid is the supervisor's, so `make stop` stops both
nohup bash scripts/supervise.sh $BIN/medal worker >"$HOME_DIR/worker.log" 2>&1 &
echo $! >"$HOME_DIR/worker.pid"
nohup $BIN/medal web --host "$HOST" --port "$PORT" >"$HOME_DIR/web.log" 2>&1 &
echo $! >"$HOME_DIR/web.pid"

for _ in $(seq 1 60); do
  if $BIN/python -c "import urllib.request,sys; urllib.request.urlopen('http://$HOST:$PORT/health', timeout=2)" 2>/dev/null; then
    break
  fi
  sleep 1
done
$BIN/python -c "import urllib.request; urllib.request.urlopen('http://$HOST:$PORT/health', timeout=2)" \
  || { echo "the web app did not start; see $HOME_DIR/web.log"; exit 1; }

cat <<MSG

medal is running at http://$HOST:$PORT  (ready in $(( $(date +%s) - started )) s)
$($BIN/medal demo --logins)
Worker log: $HOME_DIR/worker.log   Web log: $HOME_DIR/web.log
Stop with: make stop
MSG
