#!/usr/bin/env bash
# `npm run demo`: a simulated fleet → edgeflow-agent → edgeflow-collector → Kafka + InfluxDB, with a
# live terminal view until Ctrl-C. On a fresh machine it installs the npm dependencies and brings up
# the test bed's services (scripts/services.sh) first; everything the demo writes is under .demo/.
#
#   npm run demo                        # interactive, until Ctrl-C
#   DEMO_DURATION=30s npm run demo      # bounded run, then the same clean shutdown
#   DEMO_PLAIN=1 npm run demo           # the view as plain lines (automatic when stdout is not a TTY)
# DEMO_DIR (default .demo) and DEMO_AGENT (default demo-gw-1) let a test run beside a developer's demo.
# Exit status 0; 1 when the start failed or a child process died during the run (the view shows it
# with its last log line).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -d node_modules ]]; then
  # From the lock file.
  echo "demo: installing npm dependencies (first run)" >&2
  npm ci --no-audit --no-fund >&2
fi

echo "demo: bringing up services (scripts/services.sh up)" >&2
bash scripts/services.sh up >&2

# exec: node becomes the foreground process, so Ctrl-C reaches it; it starts every child in its own
# process group (they do not see the terminal's SIGINT or SIGHUP) and stops them itself on SIGINT,
# SIGTERM and SIGHUP; pid files under $DEMO_DIR/pids/ let the next demo stop what a killed one left.
exec "$(node scripts/runtime.mjs)" --import tsx scripts/demo/live.ts "$@"
