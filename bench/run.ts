/**
 * `npm run bench`: runs the benchmarks and writes a markdown table to
 * bench/results/latest.md (and stdout). Options through the environment:
 * BENCH_MESSAGES (2000), BENCH_ROUNDS (3), BENCH_ONLY (protocol|smime|large|postfix|pki|gateway),
 * BENCH_MILTER_SOCKET (inet|unix: how Postfix reaches the milters in the gateway bench),
 * BENCH_PKI_LOOKUPS (20000 cached look-ups per row), BENCH_PKI_COLD (200 per source),
 * BENCH_SMALL_MESSAGES (2000 timed 10 KB messages each side of the large-message bench),
 * BENCH_LARGE_ROUNDS (4 alternating unloaded / loaded blocks in it).
 * The gateway bench needs OpenDKIM (`apt-get install opendkim`); the PKI bench
 * redis-server, slapd, dnsmasq and openssl.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { crlBenchmarks, pkijsRunsFor } from './crl-bench.js';
import { gatewayBenchmarks } from './gateway-bench.js';
import { largeMessageBenchmark } from './large-message-bench.js';
import { fmtMs } from './latency.js';
import { pkiBenchmarks } from './pki-bench.js';
import { postfixBenchmarks } from './postfix-bench.js';
import { protocolBenchmarks } from './protocol-bench.js';
import { memoryBenchmarks, smimeBenchmarks } from './smime-bench.js';

const env = process.env;
const only = env['BENCH_ONLY'];
const lines: string[] = [];
const out = (s = '') => {
  lines.push(s);
  process.stdout.write(`${s}\n`);
};

out(`# domsec-milter benchmarks`);
out();
out(
  `${new Date().toISOString()} · Node ${process.version} · ${os.cpus().length} cores · ${os.cpus()[0]?.model ?? ''}`,
);
out();

if (!only || only === 'protocol') {
  out('## Milter protocol in-process (our client -> our server, loopback)');
  out();
  out('| load | transactions | seconds | transactions/s | body MB/s |');
  out('|---|---:|---:|---:|---:|');
  for (const r of await protocolBenchmarks()) {
    out(
      `| ${r.name} | ${r.transactions} | ${r.seconds.toFixed(2)} | ${r.perSecond.toFixed(0)} | ${r.mbPerSecond.toFixed(1)} |`,
    );
  }
  out();
}

if (!only || only === 'smime') {
  out('## S/MIME transform in-process (32 in flight, both cores)');
  out();
  out('| message | operation | msgs/s | ratio to raw RSA-2048 sign/s |');
  out('|---|---|---:|---:|');
  for (const r of await smimeBenchmarks((s) => process.stderr.write(`${s}\n`))) {
    const size =
      r.size === 0
        ? '-'
        : r.size >= 1024 * 1024
          ? `${r.size / 1024 / 1024} MB`
          : `${r.size / 1024} KB`;
    out(
      `| ${size} | ${r.name} | ${r.perSecond.toFixed(1)} | ${r.ratioToRawSign === undefined ? '1.000' : r.ratioToRawSign.toFixed(3)} |`,
    );
  }
  out();
  out('Target: 10 KB sign+encrypt >= 0.75 x raw RSA-2048 sign/s.');
  out();
  const size = 25 * 1024 * 1024;
  out('| 25 MB message, fresh process | RSS before | peak RSS | peak / message size |');
  out('|---|---:|---:|---:|');
  for (const m of memoryBenchmarks(size)) {
    out(
      `| ${m.name} | ${(m.baselineRssBytes / 1e6).toFixed(0)} MB | ${(m.peakRssBytes / 1e6).toFixed(0)} MB | ${(m.peakRssBytes / size).toFixed(2)} |`,
    );
  }
  out();
  out('Target: peak RSS <= 8 x message size.');
  out();
}

if (!only || only === 'large') {
  const size = 25 * 1024 * 1024;
  out('## A 25 MB message through `serve` while 10 KB messages keep coming (sign+encrypt)');
  out();
  const smallMessages = Number(env['BENCH_SMALL_MESSAGES'] ?? 2000);
  const rounds = Number(env['BENCH_LARGE_ROUNDS'] ?? 4);
  const r = await largeMessageBenchmark({ size, smallMessages, rounds }, (s) =>
    process.stderr.write(`${s}\n`),
  );
  out(
    `${smallMessages} small messages each side, in ${rounds} alternating unloaded / loaded blocks.`,
  );
  out();
  out('| 10 KB messages, one at a time | p50 | p99 | max |');
  out('|---|---:|---:|---:|');
  out(
    `| unloaded | ${fmtMs(r.unloaded.p50)} | ${fmtMs(r.unloaded.p99)} | ${fmtMs(r.unloaded.max)} |`,
  );
  out(
    `| 25 MB messages in flight (${r.largeCompleted} done, ${r.largeSeconds.toFixed(2)} s each) | ${fmtMs(r.loaded.p50)} | ${fmtMs(r.loaded.p99)} | ${fmtMs(r.loaded.max)} |`,
  );
  out();
  out(
    `p99 loaded / unloaded: ${(r.loaded.p99 / r.unloaded.p99).toFixed(2)} (target <= 2). Milter RSS: ${(r.baselineRssBytes / 1e6).toFixed(0)} MB before (warmed up), ${(r.peakRssBytes / 1e6).toFixed(0)} MB at peak = ${(r.peakRssBytes / size).toFixed(2)} x the message size; the large messages added ${((r.peakRssBytes - r.baselineRssBytes) / 1e6).toFixed(0)} MB = ${((r.peakRssBytes - r.baselineRssBytes) / size).toFixed(2)} x (target <= 8).`,
  );
  out();
}

if (!only || only === 'postfix') {
  const messages = Number(env['BENCH_MESSAGES'] ?? 2000);
  const rounds = Number(env['BENCH_ROUNDS'] ?? 3);
  out(
    `## Through a private Postfix: ${messages} messages, 20 concurrent SMTP sessions, ${rounds} interleaved rounds`,
  );
  out();
  const rows = await postfixBenchmarks(
    { messages, concurrency: 20, sizes: [10 * 1024, 100 * 1024], rounds },
    (s) => process.stderr.write(`${s}\n`),
  );
  out(
    '| size | variant | msgs/s per round | median msgs/s | ratio to no milter | milter CPU ms/msg |',
  );
  out('|---|---|---|---:|---:|---:|');
  for (const r of rows) {
    out(
      `| ${r.size / 1024} KB | ${r.variant} | ${r.rates.map((x) => x.toFixed(0)).join(', ')} | ${r.median.toFixed(0)} | ${r.ratio.toFixed(3)} | ${r.milterCpuMs.toFixed(2)} |`,
    );
  }
  out();
  out('Target: pass-through >= 0.90 x no milter.');
}

if (!only || only === 'pki') {
  const lookups = Number(env['BENCH_PKI_LOOKUPS'] ?? 20_000);
  const coldRuns = Number(env['BENCH_PKI_COLD'] ?? 200);
  const log = (s: string) => process.stderr.write(`${s}\n`);
  // Tail latencies move with whatever else runs on the machine: say how busy it was.
  const load = os.loadavg()[0]!.toFixed(2);
  const pki = await pkiBenchmarks({ lookups, coldRuns }, log);
  out(
    `## PKI: cached look-ups, ${lookups} one after another (after ${Math.ceil(lookups / 10)} untimed), loopback`,
  );
  out();
  out(
    'The same partner each time, through PartnerCertificates -> CachedSource(LDAP source), and RevocationChecker.check on its cached answer. Each row checks that LDAP or the responder was asked once and the cache answered the rest.',
  );
  out();
  out('| look-up | p50 ms | p99 ms | max ms | p99 < 1 ms |');
  out('|---|---:|---:|---:|---|');
  for (const r of pki.cached) {
    const l = r.latency;
    out(
      `| ${r.name} | ${fmtMs(l.p50)} | ${fmtMs(l.p99)} | ${fmtMs(l.max)} | ${l.p99 < 1 ? 'yes' : 'NO'} |`,
    );
  }
  out();
  out(
    `Target: cached look-up p99 < 1 ms on loopback. Load average when the PKI bench began: ${load}.`,
  );
  out();
  out(`## PKI: cold look-ups per source, cache bypassed, ${coldRuns} each (after 10 untimed)`);
  out();
  out('| source | median ms | p99 ms | max ms |');
  out('|---|---:|---:|---:|');
  for (const r of pki.cold) {
    const l = r.latency;
    out(`| ${r.name} | ${fmtMs(l.p50)} | ${fmtMs(l.p99)} | ${fmtMs(l.max)} |`);
  }
  out();
  out(
    `Loading the static directory (1000 PEM files, once at startup): ${fmtMs(pki.directoryLoadMs)} ms.`,
  );
  out();
  const crlRuns = 9;
  const crls = await crlBenchmarks([10_000, 100_000], crlRuns, log);
  out(
    `## CRL parsing (CRLs by \`openssl ca -gencrl\`; medians of ${crlRuns} runs; pkijs: median of ${pkijsRunsFor(10_000)} at 10 000, ${pkijsRunsFor(100_000)} run at 100 000)`,
  );
  out();
  out(
    '| entries | DER size | parseCrl ms | signature check ms | one lookup µs | pkijs, default asn1js limits | pkijs, raised limits, ms (asn1js.fromBER part) | pkijs / parseCrl |',
  );
  out('|---:|---:|---:|---:|---:|---|---:|---:|');
  for (const r of crls) {
    const pkijs =
      typeof r.pkijs === 'string' ? r.pkijs : `${fmtMs(r.pkijs.totalMs)} (${fmtMs(r.pkijs.berMs)})`;
    const ratio = typeof r.pkijs === 'string' ? '-' : (r.pkijs.totalMs / r.parse.p50).toFixed(0);
    out(
      `| ${r.entries.toLocaleString('en')} | ${(r.bytes / 1024 / 1024).toFixed(2)} MB | ${fmtMs(r.parse.p50)} | ${fmtMs(r.signedBy.p50)} | ${r.lookupUs.toFixed(3)} | ${r.pkijsDefaultLimits} | ${pkijs} | ${ratio} |`,
    );
  }
  out();
  out(
    'pkijs: asn1js.fromBER, then new CertificateRevocationList; raised limits: maxNodes 20 000 000, maxContentLength 256 MiB. One lookup: mean of 100 000 Map look-ups of revoked serials.',
  );
  out();
}

mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/latest.md', `${lines.join('\n')}\n`);
process.stderr.write('written to bench/results/latest.md\n');

if (!only || only === 'gateway') {
  const messages = Number(env['BENCH_MESSAGES'] ?? 2000);
  const rounds = Number(env['BENCH_ROUNDS'] ?? 3);
  out(
    `## The gateway through a private Postfix beside OpenDKIM: ${messages} messages, 20 sessions, ${rounds} interleaved rounds`,
  );
  out();
  const transport = env['BENCH_MILTER_SOCKET'] === 'unix' ? 'unix' : 'inet';
  out(`Milters reached over ${transport === 'unix' ? 'unix sockets' : 'TCP on loopback'}.`);
  out();
  const rows = await gatewayBenchmarks(
    { messages, rounds, sizes: [10 * 1024, 100 * 1024], transport },
    (s) => process.stderr.write(`${s}\n`),
  );
  out('| size | variant | msgs/s per round | median msgs/s | ratio to OpenDKIM |');
  out('|---|---|---|---:|---:|');
  for (const r of rows) {
    out(
      `| ${r.size / 1024} KB | ${r.variant} | ${r.rates.map((x) => x.toFixed(0)).join(', ')} | ${r.median.toFixed(0)} | ${r.ratioToOpenDkim.toFixed(3)} |`,
    );
  }
  out();
  out('Target: domsec sign+encrypt >= 1.2 x OpenDKIM signing.');
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/latest.md', `${lines.join('\n')}\n`);
}
