// The files a valid configuration points at (issue 12 item 3): secrets, TLS material and sensor
// credentials are read by `check-config` and before `run` starts anything, so a missing secret, a CA that
// is a directory or a certificate that is not PEM is one `yaml.path: problem` line and exit 2, not a stack
// trace from deep inside a connect. `check-config --schema-only` skips this (a config written for
// another machine, e.g. the samples in deploy/).
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { readCredentialFile } from '../shared/credentials.ts';
import type { AgentConfig } from './config.ts';
import type { ConfigFile } from './config-common.ts';
import { sources } from './sources/registry.ts';

type Kind = ConfigFile['kind'];

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/** One problem line per file that cannot be used, `yaml.path: problem`; empty when all are fine. */
export function checkConfigFiles(config: AgentConfig): string[] {
  const problems: string[] = [];
  const check = (path: string, file: string | undefined, kind: Kind) => {
    if (file === undefined) return;
    const problem = fileProblem(file, kind);
    if (problem) problems.push(`${path}: ${file}: ${problem}`);
  };
  config.sources.forEach((s, i) => {
    // Each source kind names its files in its descriptor (agent/sources/<type>.descriptor.ts).
    for (const f of sources.get(s.type).files?.(s) ?? []) check(`sources.${i}.${f.key}`, f.path, f.kind);
  });
  const up = config.uplink;
  if (up) {
    check('uplink.passwordFile', up.passwordFile, 'secret');
    check('uplink.ca', up.ca, 'ca');
    check('uplink.cert', up.cert, 'cert');
    check('uplink.key', up.key, 'key');
  }
  check('fleet.publicKeyFile', config.fleet?.publicKeyFile, 'ed25519-public');
  const upd = config.update;
  if (upd) {
    check('update.publicKeyFile', upd.publicKeyFile, 'ed25519-public');
    check('update.passwordFile', upd.passwordFile, 'secret');
    check('update.ca', upd.ca, 'ca');
  }
  return problems;
}

function fileProblem(file: string, kind: Kind): string | null {
  let text: string;
  try {
    if (statSync(file).isDirectory()) return 'is a directory, expected a file';
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (kind === 'credentials' && code === 'ENOENT')
      return 'does not exist (create it with `edgeflow-agent add-sensor <sensorId> --credentials <file>`)';
    return `cannot read (${code ?? 'error'})`;
  }
  switch (kind) {
    case 'secret':
      return text.replace(/\r?\n$/, '') === '' ? 'is empty, expected the secret' : null;
    case 'credentials':
      try {
        readCredentialFile(file);
        return null;
      } catch (e) {
        return `not an edgeflow credentials file (${(e as Error).message.replace(`${file}: `, '')})`;
      }
    case 'ca':
    case 'cert': {
      const blocks = [...text.matchAll(PEM_BLOCK)].filter((m) => m[1] === 'CERTIFICATE');
      if (blocks.length === 0) return 'no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)';
      for (const b of blocks) {
        try {
          new X509Certificate(b[0]);
        } catch {
          return 'a PEM certificate in it does not parse';
        }
      }
      return null;
    }
    case 'ed25519-public':
      try {
        const k = createPublicKey(text);
        return k.asymmetricKeyType === 'ed25519' ? null : `not an ed25519 key (${k.asymmetricKeyType})`;
      } catch {
        return 'not a PEM public key';
      }
    case 'key':
      try {
        createPrivateKey(text);
        return null;
      } catch {
        return 'not a PEM private key';
      }
  }
}
