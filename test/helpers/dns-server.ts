/**
 * A real DNS server (dnsmasq, package dnsmasq-base) on a loopback port,
 * private to one test. It answers for one zone from its own data only:
 * `--dns-rr` records of any type, CNAMEs, TXT records (a name with only a
 * TXT record answers NOERROR without SMIMEA: NODATA), NXDOMAIN for any other
 * name in the zone and REFUSED outside it. UDP answers larger than
 * `ednsPacketMax` come back truncated (TC), so the client must use TCP.
 * With `forwardTo` it is instead a local stub in front of an upstream
 * resolver for the zone, copying that resolver's AD bit (--proxy-dnssec):
 * how a host runs a loopback resolver in front of a validating one.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { acceptsConnections, freePort } from './ports.js';

export const DNSMASQ = '/usr/sbin/dnsmasq';

export interface DnsRr {
  readonly name: string;
  readonly type: number;
  readonly data: Buffer;
}

export interface DnsServerOptions {
  /** The zone answered from local data only. */
  readonly zone: string;
  readonly records?: readonly DnsRr[];
  readonly cnames?: readonly { readonly alias: string; readonly target: string }[];
  readonly txt?: readonly { readonly name: string; readonly text: string }[];
  /** Largest UDP answer dnsmasq sends; larger ones are truncated. Default 1232. */
  readonly ednsPacketMax?: number;
  /** Also listen on ::1. */
  readonly ipv6?: boolean;
  /** Forward the zone to this resolver ("127.0.0.1:port") and pass on its AD bit. */
  readonly forwardTo?: string;
}

export interface TestDnsServer {
  readonly port: number;
  /** "127.0.0.1:port" */
  readonly address: string;
  /** dnsmasq's own log (queries included), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

function args(port: number, o: DnsServerOptions): string[] {
  return [
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    ...(o.ipv6 ? ['--listen-address=::1'] : []),
    '--bind-interfaces',
    '--keep-in-foreground',
    '--pid-file=',
    '--log-facility=-',
    '--log-queries',
    '--cache-size=0',
    `--edns-packet-max=${o.ednsPacketMax ?? 1232}`,
    ...(o.forwardTo
      ? [`--server=/${o.zone}/${o.forwardTo.replace(/:(\d+)$/, '#$1')}`, '--proxy-dnssec']
      : [`--local=/${o.zone}/`]),
    ...(o.records ?? []).map((r) => `--dns-rr=${r.name},${r.type},${r.data.toString('hex')}`),
    ...(o.cnames ?? []).map((c) => `--cname=${c.alias},${c.target}`),
    ...(o.txt ?? []).map((t) => `--txt-record=${t.name},${t.text}`),
  ];
}

async function startOn(port: number, o: DnsServerOptions): Promise<TestDnsServer> {
  let output = '';
  const child: ChildProcess = spawn(DNSMASQ, args(port, o), { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const failed = await Promise.race([spawnError, sleep(20).then(() => undefined)]);
    if (failed) throw new Error(`${DNSMASQ}: ${failed.message} (is dnsmasq-base installed?)`);
    if (child.exitCode !== null)
      throw new Error(`dnsmasq exited ${child.exitCode}: ${output.trim()}`);
    if (await acceptsConnections(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`dnsmasq did not listen on ${port} within 10 s: ${output.trim()}`);
    }
  }
  return {
    port,
    address: `127.0.0.1:${port}`,
    log: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** freePort() checks TCP only; the UDP port may be taken: then try another. */
export async function startDnsServer(options: DnsServerOptions): Promise<TestDnsServer> {
  let last: unknown;
  for (let i = 0; i < 5; i++) {
    try {
      return await startOn(await freePort(), options);
    } catch (err) {
      last = err;
      if (!String((err as Error).message).includes('in use')) throw err;
    }
  }
  throw last;
}
