/**
 * Hostile inbound messages through a running `domsec-milter serve` while
 * small messages keep coming (bench/hostile-messages.ts): per kind, the
 * longest stall of the milter's event loop (its own
 * nodejs_eventloop_lag_max_seconds, read from /metrics before and after
 * each block) and the small messages' latency, beside the same run's
 * unloaded figures. As the large-message bench: over the milter protocol
 * directly, unloaded and loaded blocks alternating.
 */

import { rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificatePem, generateDomainPki } from '../src/pki/keygen.js';
import { writeDomainPki } from '../src/pki/keygen-files.js';
import { startServe } from '../test/helpers/cli.js';
import { hostileMessages } from './hostile-messages.js';
import { smallMessages, startSender } from './large-message-bench.js';
import { type Latency, summarize } from './latency.js';

export interface Block {
  readonly latency: Latency;
  /** Longest event-loop stall seen in the milter, milliseconds. */
  readonly stallMs: number;
}

export interface HostileRow extends Block {
  readonly name: string;
  readonly bytes: number;
  /** Hostile messages completed during the loaded blocks, and their mean seconds. */
  readonly completed: number;
  readonly seconds: number;
  /** What the milter answered, e.g. "accept pass" or "tempfail -", with counts. */
  readonly outcomes: string;
  /** The unloaded blocks between this kind's loaded ones: the same minutes of the host. */
  readonly beside: Block;
}

export interface HostileResult {
  readonly unloaded: Block;
  readonly rows: readonly HostileRow[];
}

const LAG_MAX = 'domsec_process_nodejs_eventloop_lag_max_seconds';

export async function hostileBenchmark(
  o: { smallMessages: number; rounds: number; kinds?: readonly string[] },
  log: (s: string) => void,
): Promise<HostileResult> {
  const dir = await mkdtemp(join(tmpdir(), 'domsec-hostile-'));
  const [org, net] = await Promise.all([
    generateDomainPki('example.org'),
    generateDomainPki('example.net'),
  ]);
  await writeDomainPki(join(dir, 'org'), 'example.org', org);
  writeFileSync(join(dir, 'partner.pem'), certificatePem(net.encryption.certificate));
  // The sender's domain CA is trusted: every signature is judged to the end.
  writeFileSync(join(dir, 'anchors.pem'), certificatePem(net.ca.certificate));
  log('  building the hostile messages');
  const messages = (await hostileMessages(org, net)).filter(
    (m) => !o.kinds || o.kinds.includes(m.key),
  );
  const serve = await startServe({
    DOMSEC_LOG_LEVEL: 'warn',
    DOMSEC_LOCAL_DOMAINS: 'example.org',
    DOMSEC_KEYS_DIR: join(dir, 'org'),
    DOMSEC_PARTNER_CERTS: join(dir, 'partner.pem'),
    DOMSEC_TRUST_ANCHORS: join(dir, 'anchors.pem'),
    DOMSEC_REVOCATION: 'off',
  });
  const small = smallMessages(serve.port);
  /**
   * The longest stall since the last call (the milter resets its histogram
   * at each scrape), in ms. The request waits for the stalled loop itself:
   * a generous timeout, not the scraper's 2 s.
   */
  const stall = async () => {
    const res = await fetch(`${serve.httpUrl}/metrics`, { signal: AbortSignal.timeout(120_000) });
    const line = (await res.text()).split('\n').find((l) => l.startsWith(`${LAG_MAX} `));
    return Number(line?.split(' ')[1] ?? Number.NaN) * 1000;
  };
  const perBlock = Math.ceil(o.smallMessages / o.rounds);
  const unloaded: number[] = [];
  let unloadedStall = 0;
  /** An unloaded block: its latencies, and its longest stall. */
  const unloadedBlock = async (into: number[]): Promise<number> => {
    await stall();
    const ms = await small.time(perBlock);
    const longest = await stall();
    unloaded.push(...ms);
    into.push(...ms);
    unloadedStall = Math.max(unloadedStall, longest);
    return longest;
  };
  try {
    for (let i = 0; i < 1000; i++) await small.send(); // warm-up: past V8's optimising compiler
    const rows: HostileRow[] = [];
    for (const m of messages) {
      const file = join(dir, 'hostile.eml');
      writeFileSync(file, m.message);
      const files = m.parts
        ? (['before', 'der', 'after'] as const).map((k) => `${file}.${k}`)
        : [file];
      if (m.parts)
        for (const k of ['before', 'der', 'after'] as const)
          writeFileSync(`${file}.${k}`, m.parts[k]);
      const loaded: number[] = [];
      const lines: string[] = [];
      const beside: number[] = [];
      let stallMs = 0;
      let besideStall = 0;
      for (let round = 0; round < o.rounds; round++) {
        besideStall = Math.max(besideStall, await unloadedBlock(beside));
        const sender = startSender(serve.port, ...files);
        // Measured while they flow, and until at least one went through in this block;
        // for at most a minute (a message that stalls the loop for seconds would take hours).
        await stall();
        const until = Date.now() + 60_000;
        for (let n = 0; n < perBlock || sender.lines.length === 0; n += 10) {
          loaded.push(...(await small.time(10)));
          if (Date.now() > until && sender.lines.length > 0) break;
        }
        stallMs = Math.max(stallMs, await stall());
        await sender.stop();
        lines.push(...sender.lines);
        // The message cut off by the kill may still be in the milter: let it finish.
        await new Promise((r) => setTimeout(r, 1000));
      }
      const counts = new Map<string, number>();
      for (const l of lines) {
        const outcome = l.split(' ').slice(1).join(' ');
        counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
      }
      const row: HostileRow = {
        name: m.name,
        bytes: m.message.length,
        latency: summarize(loaded),
        stallMs,
        completed: lines.length,
        seconds: lines.reduce((a, l) => a + Number(l.split(' ')[0]), 0) / lines.length,
        outcomes: [...counts].map(([k, n]) => `${k} (${n})`).join(', '),
        beside: { latency: summarize(beside), stallMs: besideStall },
      };
      log(
        `  ${m.name}: stall ${row.stallMs.toFixed(0)} ms, small p99 ${row.latency.p99.toFixed(2)} ms; ${row.completed} done, ${row.outcomes}`,
      );
      rows.push(row);
    }
    return { unloaded: { latency: summarize(unloaded), stallMs: unloadedStall }, rows };
  } finally {
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
