#!/usr/bin/env bash
# The gateway driven by real clients: the official `openai` and `anthropic` Python SDKs and curl
# (issue 13).
#
# Creates (once) a venv under target/sdk-venv with the pinned SDKs, builds the CLI, starts
# `fazztv serve --config tests/sdk/gateway.json --listen 127.0.0.1:0`, runs
# tests/sdk/test_gateway.py against it, then stops it with SIGTERM and checks that it exited 0.
# Loopback only; every provider in the config is an offline mock. Needs python3 (with venv), curl
# and cargo. The binary is ${CARGO_TARGET_DIR:-target}/debug/fazztv.
set -euo pipefail
cd "$(dirname "$0")/../.."

SDK_DIR=tests/sdk
VENV=target/sdk-venv
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/debug/fazztv"
START_TIMEOUT_S=30
STOP_TIMEOUT_S=20

say() { printf 'sdk: %s\n' "$*"; }

pin() { sed -n "s/^$1==\([^[:space:]]*\).*/\1/p" "$SDK_DIR/requirements.txt"; }
pinned=""
for sdk in openai anthropic; do
  version="$(pin "$sdk")"
  [ -n "$version" ] || { say "no $sdk==VERSION pin in $SDK_DIR/requirements.txt"; exit 1; }
  pinned="$pinned $sdk $version"
done
pinned="${pinned# }"

# The venv: reused when it already has the pinned SDKs, else made anew.
sdk_versions() {
  "$VENV/bin/python" -c 'import openai, anthropic; print("openai", openai.__version__, "anthropic", anthropic.__version__)'
}
installed=""
if [ -x "$VENV/bin/python" ]; then
  installed="$(sdk_versions 2>/dev/null || true)"
fi
if [ "$installed" != "$pinned" ]; then
  say "creating $VENV with $pinned"
  python3 -m venv --clear "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$SDK_DIR/requirements.txt"
fi
say "$(sdk_versions), $("$VENV/bin/python" --version)"

cargo build -p fazztv-cli --locked
[ -x "$BIN" ] || { say "no binary at $BIN after the build"; exit 1; }

logs="$(mktemp -d)"
server_pid=""
cleanup() {
  status=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -s "$logs/stderr" ]; then
    say "the gateway's stderr (last 60 lines):"
    tail -n 60 "$logs/stderr" >&2
  fi
  rm -rf "$logs"
  exit "$status"
}
trap cleanup EXIT

"$BIN" serve --config "$SDK_DIR/gateway.json" --listen 127.0.0.1:0 \
  >"$logs/stdout" 2>"$logs/stderr" </dev/null &
server_pid=$!

# Wait (bounded) for its one `listening on http://IP:PORT` line.
url=""
for _ in $(seq 1 $((START_TIMEOUT_S * 10))); do
  url="$(sed -n 's/^listening on \(http:\/\/[^[:space:]]*\).*/\1/p' "$logs/stderr" | head -n 1)"
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    say "the gateway exited before listening"
    exit 1
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  say "no 'listening on' line on the gateway's stderr within ${START_TIMEOUT_S}s"
  exit 1
fi
case "$url" in
  http://127.0.0.1:*) ;;
  *) say "the gateway listens on $url, not on loopback"; exit 1 ;;
esac
say "gateway at $url (pid $server_pid)"

tests_status=0
FAZZTV_GATEWAY_URL="$url" "$VENV/bin/python" "$SDK_DIR/test_gateway.py" || tests_status=$?

# Stop it as a service manager would, and expect a clean exit after draining.
kill -TERM "$server_pid"
for _ in $(seq 1 $((STOP_TIMEOUT_S * 10))); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$server_pid" 2>/dev/null; then
  say "the gateway did not exit within ${STOP_TIMEOUT_S}s of SIGTERM"
  exit 1
fi
server_status=0
wait "$server_pid" || server_status=$?
server_pid=""
if [ "$server_status" -ne 0 ]; then
  say "the gateway exited $server_status after SIGTERM (expected 0)"
  exit 1
fi
say "the gateway exited 0 after SIGTERM"
exit "$tests_status"
