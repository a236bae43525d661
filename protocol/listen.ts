/**
 * Milter socket specifications as Postfix (`inet:host:port`, `unix:/path`) and
 * Sendmail (`inet:port@host`, `inet6:port@host`, `local:/path`) write them.
 */

export type ListenSpec =
  | { readonly kind: 'inet'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

export class ListenSpecError extends Error {
  override readonly name = 'ListenSpecError';
}

function port(text: string, spec: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 0 || n > 65535) {
    throw new ListenSpecError(`${spec}: port must be a number from 0 to 65535`);
  }
  return n;
}

export function parseListenSpec(spec: string): ListenSpec {
  const colon = spec.indexOf(':');
  if (colon < 0) throw new ListenSpecError(`${spec}: expected inet:HOST:PORT or unix:/path`);
  const scheme = spec.slice(0, colon).toLowerCase();
  const rest = spec.slice(colon + 1);
  if (scheme === 'unix' || scheme === 'local') {
    if (!rest.startsWith('/'))
      throw new ListenSpecError(`${spec}: a unix socket path must be absolute`);
    return { kind: 'unix', path: rest };
  }
  if (scheme !== 'inet' && scheme !== 'inet6') {
    throw new ListenSpecError(
      `${spec}: unknown socket type ${scheme} (expected inet, inet6 or unix)`,
    );
  }
  // Sendmail style: port@host
  const at = rest.indexOf('@');
  if (at >= 0)
    return {
      kind: 'inet',
      port: port(rest.slice(0, at), spec),
      host: stripBrackets(rest.slice(at + 1)),
    };
  // Postfix style: host:port, IPv6 host in brackets
  const last = rest.lastIndexOf(':');
  if (last < 0) {
    return { kind: 'inet', port: port(rest, spec), host: scheme === 'inet6' ? '::1' : '127.0.0.1' };
  }
  const host = stripBrackets(rest.slice(0, last));
  if (host === '') throw new ListenSpecError(`${spec}: empty host`);
  return { kind: 'inet', host, port: port(rest.slice(last + 1), spec) };
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export function formatListenSpec(spec: ListenSpec): string {
  if (spec.kind === 'unix') return `unix:${spec.path}`;
  return spec.host.includes(':')
    ? `inet:[${spec.host}]:${spec.port}`
    : `inet:${spec.host}:${spec.port}`;
}
