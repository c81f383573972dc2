// mqtt.js's connect(url, opts) parses the URL with Node's legacy `url.parse()`, which Node 24 deprecates
// at run time (DEP0169: a warning on stderr at every agent start). This parses it with the WHATWG URL
// parser into the options mqtt.js would have derived (host, port, protocol, path for ws/wss, query,
// credentials), for `mqtt.connect(options)`. Options given by the caller win (those set to undefined do
// not: a config without `username` keeps the URL's).
import type { IClientOptions } from 'mqtt';

export function mqttUrlOptions(url: string): IClientOptions {
  const u = new URL(url);
  const protocol = u.protocol.replace(/:$/, '') as IClientOptions['protocol'];
  const opts: IClientOptions = {
    protocol,
    // WHATWG keeps the brackets of an IPv6 literal; net.connect wants the bare address.
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
  };
  if (u.port !== '') opts.port = Number(u.port);
  if (protocol?.startsWith('ws') || protocol?.startsWith('wx')) opts.path = `${u.pathname}${u.search}`;
  if (u.username !== '') opts.username = decodeURIComponent(u.username);
  if (u.password !== '') opts.password = decodeURIComponent(u.password);
  const clientId = u.searchParams.get('clientId');
  if (clientId !== null) opts.clientId = clientId;
  return opts;
}

/** `url`'s options overlaid with the caller's defined ones: what `mqtt.connect(url, opts)` would use. */
export function mqttConnectOptions(url: string, opts: IClientOptions): IClientOptions {
  const out: Record<string, unknown> = { ...mqttUrlOptions(url) };
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) out[k] = v;
  return out as IClientOptions;
}
