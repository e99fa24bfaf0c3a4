#!/usr/bin/env bash
# A Docker-free AWS emulator for Sluice's AWS-mode integration tests: ministack, pinned, from PyPI.
#
#   compose/emulator.sh install   create .venv/emulator and install the pins of emulator-requirements.txt
#   compose/emulator.sh start     run it in the background on 127.0.0.1:4566 and wait until it is healthy
#   compose/emulator.sh stop      stop the emulator this script started (and nothing else)
#   compose/emulator.sh status    say whether something answers health on 127.0.0.1:4566
#
# Then point the AWS SDK at it with its standard settings:
#   AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
#
# Admin endpoints: POST /_ministack/reset clears every service; GET /_ministack/ses/messages lists sent mail.
# Known gaps of the emulator (the Rust adapters are written for AWS, the tests tolerate these):
#   - HeartbeatSeconds is not enforced;
#   - a task token is the same across the Retry attempts of one state;
#   - an unknown or already used task token answers TaskDoesNotExist (AWS: InvalidToken or TaskDoesNotExist);
#   - state machine definitions are not validated on create;
#   - no StartMessageMoveTask (moving messages back out of a dead-letter queue);
#   - escaped braces in intrinsic strings (States.StringToJson('\{...\}')) are not read (States.Runtime);
#     pipeline.asl.json avoids them.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REQUIREMENTS="$ROOT/compose/emulator-requirements.txt"
VENV="$ROOT/.venv/emulator"
PID_FILE="$VENV/ministack.pid"
LOG_FILE="$VENV/ministack.log"
HOST=127.0.0.1
PORT=4566
HEALTH_URL="http://$HOST:$PORT/_ministack/health"
START_TIMEOUT_SECONDS=30

say() { printf 'emulator: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# True when something answers the health endpoint. Uses the venv's (or the system's) Python rather than
# curl, which is not on every machine.
healthy() {
    local py=python3
    [[ -x "$VENV/bin/python" ]] && py="$VENV/bin/python"
    "$py" - "$HEALTH_URL" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

# The PID this script started, if that process is still alive.
our_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    # The PID may have been reused since: only a ministack process counts as ours.
    ps -o args= -p "$pid" 2>/dev/null | grep -q ministack || return 1
    echo "$pid"
}

# "name==version" for every pin of the requirements file, lowercased for comparison with pip freeze.
wanted_pins() {
    grep -Ev '^[[:space:]]*(#|$)' "$REQUIREMENTS" | sed 's/[[:space:]]//g' | tr '[:upper:]_' '[:lower:]-' | sort
}

installed_pins() {
    "$VENV/bin/python" -m pip freeze --all 2>/dev/null | tr '[:upper:]_' '[:lower:]-' | sort
}

cmd_install() {
    command -v python3 >/dev/null || die "python3 is needed to install the emulator; install it (e.g. apt-get install python3 python3-venv) and retry"
    if [[ ! -x "$VENV/bin/python" ]]; then
        say "creating $VENV"
        python3 -m venv "$VENV" || die "python3 -m venv failed; install the venv module (e.g. apt-get install python3-venv) and retry"
    fi
    local missing
    missing="$(comm -23 <(wanted_pins) <(installed_pins))"
    if [[ -z "$missing" ]]; then
        say "already installed at the pinned versions ($VENV)"
        return 0
    fi
    say "installing the pinned emulator packages: $(echo "$missing" | tr '\n' ' ')"
    # --no-deps: the requirements file pins every dependency itself, so nothing unpinned comes in.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$REQUIREMENTS"
    missing="$(comm -23 <(wanted_pins) <(installed_pins))"
    [[ -z "$missing" ]] || die "pip finished but these pins are still missing: $missing"
    say "installed ($VENV)"
}

cmd_start() {
    if healthy; then
        if pid="$(our_pid)"; then
            say "already running (PID $pid), reusing it: $HEALTH_URL"
        else
            say "something already answers $HEALTH_URL; reusing it (not started by this script, so 'stop' leaves it alone)"
        fi
        return 0
    fi
    [[ -x "$VENV/bin/ministack" ]] || die "not installed; run: compose/emulator.sh install"
    if pid="$(our_pid)"; then
        die "PID $pid from $PID_FILE is alive but $HEALTH_URL does not answer; see $LOG_FILE, or run: compose/emulator.sh stop"
    fi
    say "starting ministack on $HOST:$PORT (log: $LOG_FILE)"
    # The wheel's console script `ministack` (ministack.app:main) serves in the foreground; we put it in
    # the background ourselves so the PID we record is the server's own.
    # setsid: its own session, so a Ctrl-C in the shell that started it does not stop it.
    BIND_HOST="$HOST" GATEWAY_PORT="$PORT" setsid "$VENV/bin/ministack" >"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    local waited=0
    until healthy; do
        if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
            say "ministack exited during start-up; last lines of $LOG_FILE:"
            tail -n 30 "$LOG_FILE" >&2
            rm -f "$PID_FILE"
            exit 1
        fi
        if ((waited >= START_TIMEOUT_SECONDS * 2)); then
            say "no answer from $HEALTH_URL after ${START_TIMEOUT_SECONDS}s; last lines of $LOG_FILE:"
            tail -n 30 "$LOG_FILE" >&2
            cmd_stop
            exit 1
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    say "ready (PID $(cat "$PID_FILE")): $HEALTH_URL"
}

cmd_stop() {
    local pid
    if ! pid="$(our_pid)"; then
        rm -f "$PID_FILE"
        say "not running (no live PID in $PID_FILE); nothing to stop"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "PID $pid did not stop after SIGTERM within 5s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    say "stopped (PID $pid)"
}

cmd_status() {
    local pid
    if healthy; then
        if pid="$(our_pid)"; then
            say "running (PID $pid, started by this script): $HEALTH_URL"
        else
            say "something answers $HEALTH_URL (not started by this script)"
        fi
        return 0
    fi
    if pid="$(our_pid)"; then
        say "PID $pid is alive but $HEALTH_URL does not answer; see $LOG_FILE"
    else
        say "not running"
    fi
    return 1
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 install|start|stop|status" >&2
        exit 2
        ;;
esac
