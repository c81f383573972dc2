// Child process for sqlite.test.ts: appends batches forever and prints the total after each commit,
// until the parent kills it with SIGKILL. Not a test file itself.
import { item } from './outbox.conformance.ts';
import { SqliteOutbox } from './sqlite.ts';

const path = process.argv[2]!;
const o = new SqliteOutbox({ path });
let n = 0;
for (let b = 0; ; b++) {
  const r = o.append(
    Array.from({ length: 100 }, (_, i) => item('summaries', b * 100 + i)),
    new Map([['batch', String(b)]]),
  );
  n += r.appended;
  process.stdout.write(`${n}\n`);
  if (b % 50 === 49) await new Promise((res) => setImmediate(res)); // let stdout flush
}
