// Makes every outgoing TCP connection of this process fail (test/update/unhealthy-entry.ts).
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
