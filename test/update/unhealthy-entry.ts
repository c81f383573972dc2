// Entry of build C in test/update/ota.test.ts: the real agent, built so that it never becomes healthy
// (as a release with a broken network stack would): every outgoing TCP connection fails, so its MQTT
// source never opens and its uplink never connects. The updater in it must roll back to the previous
// binary when update.healthDeadline passes. (Imports run in order: the patch, then the agent's CLI.)
import './refuse-connections.ts';
import '../../agent/main.ts';
