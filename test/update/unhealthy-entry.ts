// Entry of build C in test/update/ota.test.ts: the real agent, built so that it never becomes healthy
// (as a release with a broken network stack would): every outgoing TCP connection fails, so its MQTT
// source never opens and its uplink never connects. The updater in it must roll back to the previous
// binary when update.healthDeadline passes.
import net from 'node:net';

const refuse = (): net.Socket => {
  const s = new net.Socket();
  process.nextTick(() =>
    s.destroy(Object.assign(new Error('connect ECONNREFUSED (test build C)'), { code: 'ECONNREFUSED' })),
  );
  return s;
};
(net as { createConnection: unknown }).createConnection = refuse;
(net as { connect: unknown }).connect = refuse;
await import('../../agent/main.ts');
