// Throwaway TLS material for tests, made with openssl (an independent tool, not our code): a CA, a server
// certificate for 127.0.0.1/localhost signed by it, client certificates with a given CN, and optionally
// an unrelated CA (a client trusting only that one must fail the handshake).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  /** Path of a file in `dir` (ca.pem, server.pem, server.key, <client>.pem, other-ca.pem, ...). */
  p(file: string): string;
}

export function makeTestCerts(
  dir: string,
  opts: {
    /** Client certificates: files `<file>.pem`/`<file>.key`, subject CN `cn`. */
    clients?: { file: string; cn: string }[];
    /** rsa (needed for ECDHE-RSA suites) or ec (P-256, faster to make). [rsa] */
    key?: 'rsa' | 'ec';
    /** Also make `other-ca.pem`, a CA that signed nothing here. */
    otherCa?: boolean;
  } = {},
): TestCerts {
  const p = (f: string) => join(dir, f);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const newKey =
    opts.key === 'ec'
      ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
      : ['-newkey', 'rsa:2048', '-nodes'];
  const ca = (name: string, cn: string) =>
    ssl(
      'req',
      '-x509',
      ...newKey,
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.pem`),
      '-days',
      '1',
      '-subj',
      `/CN=${cn}`,
    );
  const leaf = (name: string, cn: string, ext?: string) => {
    ssl('req', ...newKey, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`);
    ssl(
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p('ca.pem'),
      '-CAkey',
      p('ca.key'),
      '-CAcreateserial',
      '-out',
      p(`${name}.pem`),
      '-days',
      '1',
      ...(ext ? ['-extfile', ext] : []),
    );
  };
  ca('ca', 'edgeflow-test-ca');
  writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  leaf('server', 'localhost', p('server.ext'));
  for (const c of opts.clients ?? []) leaf(c.file, c.cn);
  if (opts.otherCa) ca('other-ca', 'someone-else');
  return { dir, p };
}
