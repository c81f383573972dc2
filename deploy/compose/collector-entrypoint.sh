#!/bin/sh
# Container entry point: secrets given as environment variables (compose reads them from .env) are
# written to files under /run/edgeflow (mode 0600), because the collector reads secrets only from
# files (influx.passwordFile, kafka.sasl.passwordFile); then the collector CLI runs with the arguments.
#   EDGEFLOW_INFLUX_PASSWORD → /run/edgeflow/influx-password
set -eu
umask 077
if [ -n "${EDGEFLOW_INFLUX_PASSWORD:-}" ]; then
  printf '%s\n' "$EDGEFLOW_INFLUX_PASSWORD" > /run/edgeflow/influx-password
fi
exec node /app/bin/edgeflow-collector.js "$@"
