#!/usr/bin/env bash
# Installs edgeflow-agent on a gateway (Debian / Raspberry Pi OS), as root:
#   sudo ./install-gateway.sh dist/edgeflow-agent-linux-arm64 [agent.yaml]
# Idempotent: re-running upgrades the binary and keeps config and state.
set -euo pipefail
bin=${1:?usage: install-gateway.sh <edgeflow-agent binary> [agent.yaml]}
cfg=${2:-}
here=$(cd "$(dirname "$0")" && pwd)

id edgeflow >/dev/null 2>&1 || useradd --system --home-dir /var/lib/edgeflow --shell /usr/sbin/nologin --groups dialout edgeflow
# The executable in a directory the service user may write (over-the-air updates swap it there,
# docs/updates.md); the command on PATH is a symlink. The update guard is root's, outside it.
install -d -m 0755 -o edgeflow -g edgeflow /usr/local/lib/edgeflow
install -m 0755 -o edgeflow -g edgeflow "$bin" /usr/local/lib/edgeflow/edgeflow-agent.new
mv -f /usr/local/lib/edgeflow/edgeflow-agent.new /usr/local/lib/edgeflow/edgeflow-agent
ln -sfn /usr/local/lib/edgeflow/edgeflow-agent /usr/local/bin/edgeflow-agent
install -D -m 0755 "$here/systemd/edgeflow-agent-update-guard" /usr/local/libexec/edgeflow-agent-update-guard
install -d -m 0750 -o root -g edgeflow /etc/edgeflow
if [ -n "$cfg" ]; then
  install -m 0640 -o root -g edgeflow "$cfg" /etc/edgeflow/agent.yaml
elif [ ! -f /etc/edgeflow/agent.yaml ]; then
  install -m 0640 -o root -g edgeflow "$here/agent/agent.yaml" /etc/edgeflow/agent.yaml
fi
/usr/local/bin/edgeflow-agent check-config --config /etc/edgeflow/agent.yaml
install -m 0644 "$here/systemd/edgeflow-agent.service" /etc/systemd/system/edgeflow-agent.service
systemctl daemon-reload
systemctl enable --now edgeflow-agent
systemctl --no-pager status edgeflow-agent || true
echo "edgeflow-agent installed; status: edgeflow-agent status"
