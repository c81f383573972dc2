// Server TLS settings shared by every listener that offers TLS (the collector's MQTT listeners, its HTTP
// listener and the fleet console): TLS 1.2 at least, forward-secret suites only.
import { readFileSync } from 'node:fs';
import type { TlsOptions } from 'node:tls';

/** TLS 1.3 suites, then TLS 1.2 ECDHE AEAD suites (no RSA key exchange, no DHE, no CBC). */
export const FORWARD_SECRET_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Certificate and key files (PEM) of a server listener. */
export interface ServerTlsFiles {
  cert: string;
  key: string;
}

/** The files read (once, at start) into Node's server options, with the project's protocol floor. */
export function serverTlsOptions(files: ServerTlsFiles): TlsOptions {
  return {
    cert: readFileSync(files.cert),
    key: readFileSync(files.key),
    minVersion: 'TLSv1.2',
    ciphers: FORWARD_SECRET_CIPHERS,
    honorCipherOrder: true,
  };
}
