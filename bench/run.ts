/**
 * `npm run bench`: runs the benchmarks and writes a markdown table to
 * bench/results/latest.md (and stdout). Options through the environment:
 * BENCH_MESSAGES (2000), BENCH_ROUNDS (3), BENCH_ONLY (protocol|smime|large|hostile|postfix|pki|oracle|gateway),
 * BENCH_MILTER_SOCKET (inet|unix: how Postfix reaches the milters in the gateway bench),
 * BENCH_PKI_LOOKUPS (20000 cached look-ups per row), BENCH_PKI_COLD (200 per source),
 * BENCH_SMALL_MESSAGES (2000 timed 10 KB messages each side of the large-message bench, and
 * per kind of message in the hostile-message bench), BENCH_HOSTILE (which kinds there:
 * bomb,signers,recipients,huge,ber; all by default),
 * BENCH_LARGE_ROUNDS (4 alternating unloaded / loaded blocks in it),
 * BENCH_ORACLE_SAMPLES (200 timed end-of-message answers per kind of mutation in the oracle bench),
 * BENCH_ORACLE_WARMUP (10 untimed rounds over every kind before them).
 * The gateway bench needs OpenDKIM (`apt-get install opendkim`); the PKI bench
 * redis-server, slapd, dnsmasq and openssl.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { crlBenchmarks, pkijsRunsFor } from './crl-bench.js';
import { gatewayBenchmarks } from './gateway-bench.js';
import { hostileBenchmark } from './hostile-bench.js';
import { largeMessageBenchmark } from './large-message-bench.js';
import { fmtMs } from './latency.js';
import { type OracleRow, oracleTimingBenchmark } from './oracle-timing-bench.js';
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

if (!only || only === 'hostile') {
  out(
    '## Hostile inbound messages through `serve` while 10 KB messages keep coming (sign+encrypt)',
  );
  out();
  const smallMessages = Number(env['BENCH_SMALL_MESSAGES'] ?? 2000);
  const rounds = Number(env['BENCH_LARGE_ROUNDS'] ?? 4);
  const kinds = env['BENCH_HOSTILE']?.split(',');
  const load = os.loadavg()[0]!.toFixed(2);
  const r = await hostileBenchmark({ smallMessages, rounds, ...(kinds ? { kinds } : {}) }, (s) =>
    process.stderr.write(`${s}\n`),
  );
  out(
    `Per kind ${smallMessages} small messages each side, in ${rounds} alternating unloaded / loaded blocks; the hostile ones one after another from another process. Stall: the milter's own event-loop delay (nodejs_eventloop_lag_max_seconds, 10 ms resolution), the longest over the blocks.`,
  );
  out();
  out(
    '| hostile message (inbound) | size | done, s each | milter answered (smime=) | longest stall ms (unloaded beside) | 10 KB p50 | p99 (unloaded beside) | max | p99 / unloaded beside |',
  );
  out('|---|---:|---:|---|---:|---:|---:|---:|---:|');
  const u = r.unloaded;
  out(
    `| none (all unloaded blocks) | - | - | - | ${u.stallMs.toFixed(0)} | ${fmtMs(u.latency.p50)} | ${fmtMs(u.latency.p99)} | ${fmtMs(u.latency.max)} | 1.00 |`,
  );
  for (const x of r.rows) {
    const b = x.beside;
    out(
      `| ${x.name} | ${(x.bytes / 1024 / 1024).toFixed(1)} MB | ${x.completed}, ${x.seconds.toFixed(2)} | ${x.outcomes} | ${x.stallMs.toFixed(0)} (${b.stallMs.toFixed(0)}) | ${fmtMs(x.latency.p50)} | ${fmtMs(x.latency.p99)} (${fmtMs(b.latency.p99)}) | ${fmtMs(x.latency.max)} | ${(x.latency.p99 / b.latency.p99).toFixed(2)} |`,
    );
  }
  out();
  out(
    `Targets: longest stall <= 50 ms, p99 <= 2 x unloaded. Load average when the bench began: ${load}; the unloaded blocks beside each kind say how quiet the host was meanwhile.`,
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

if (!only || only === 'oracle') {
  const samples = Number(env['BENCH_ORACLE_SAMPLES'] ?? 200);
  const warmUpRounds = Number(env['BENCH_ORACLE_WARMUP'] ?? 10);
  const load = os.loadavg()[0]!.toFixed(2);
  const r = await oracleTimingBenchmark({ samples, warmUpRounds }, (s) =>
    process.stderr.write(`${s}\n`),
  );
  const us = (x: number) => x.toFixed(0);
  const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(0)}`;
  const pValue = (p: number) => (p < 1e-4 ? p.toExponential(0) : p.toFixed(p < 0.01 ? 4 : 2));
  // Told apart by time: a clear effect (AUC at least 0.1 from a coin's) that is no accident.
  const apart = (c: { auc: number; p: number }) => Math.abs(c.auc - 0.5) >= 0.1 && c.p < 0.001;
  const fmtRow = (x: OracleRow) => {
    const c = x.comparison;
    const vs = c
      ? `${c.against} | ${signed(c.delta)} [${signed(c.ci[0])}, ${signed(c.ci[1])}] | ${(c.delta / x.stats.iqr).toFixed(2)} | ${c.auc.toFixed(2)} | ${pValue(c.p)}`
      : '- | - | - | - | -';
    return `| ${x.family} | ${x.kind} | ${x.capture} | ${x.variants} | ${x.stats.n} | ${us(x.stats.median)} | ${us(x.stats.p10)} | ${us(x.stats.p90)} | ${us(x.serverMedian)} | ${x.ratioToGenuine.toFixed(3)} | ${vs} | ${x.outcomes} |`;
  };
  out(
    `## Decryption oracle: time to answer at end of message, per family of mutations (${r.messages} messages, ${r.rounds} interleaved rounds)`,
  );
  out();
  out(
    'How to read it. The attacker mutates one capture and times our answer; the reply and the mail back are one class (test/security/decryption-oracle-property.test.ts), so time is all that is left. (1) The padding oracle: "good padding" vs "bad padding" in family 1, and "valid vs invalid padding" below, must be within noise: Δ median with a 95% interval around 0, AUC near 0.5 (AUC = P(row slower than the other); 0.5 is a coin, 0 or 1 means every sample tells). The same for the key-transport oracles (Bleichenbacher, Manger): a key blob well-formed for its padding but carrying another key vs a broken one, in family 4. (2) Any two kinds of mutation of the same capture that time tells apart (the matrix at the end) give the attacker a bit about the mutated plaintext, even where padding does not. (3) The genuine messages are slower because they are decrypted and their signature verified to the end: that tells the attacker nothing, they know the capture is genuine; a mutation is as slow exactly when it is verified too (it changed nothing that is signed).',
  );
  out();
  const goodBad = r.rows.find((x) => x.kind === 'good padding')?.comparison;
  const validInvalid = r.padding[0]?.comparison;
  if (goodBad && validInvalid)
    out(
      `This run: good vs bad padding ${signed(goodBad.delta)} µs [${signed(goodBad.ci[0])}, ${signed(goodBad.ci[1])}], AUC ${goodBad.auc.toFixed(2)} (${apart(goodBad) ? 'TOLD APART' : 'within noise'}); valid vs invalid padding ${signed(validInvalid.delta)} µs, AUC ${validInvalid.auc.toFixed(2)} (${apart(validInvalid) ? 'TOLD APART' : 'within noise'}).`,
    );
  const told = r.pairs.filter(
    (x) => x.delta > 0 && !x.a.startsWith('genuine') && !x.b.startsWith('genuine') && apart(x),
  );
  out();
  out(
    told.length === 0
      ? 'No two mutation kinds of one capture are told apart by time (|AUC − 0.5| ≥ 0.1 with p < 0.001).'
      : `Mutation kinds of one capture told apart by time (|AUC − 0.5| ≥ 0.1, p < 0.001), slower first: ${told
          .sort((x, y) => y.delta - x.delta)
          .map((x) => `${x.a} > ${x.b} by ${us(x.delta)} µs (AUC ${x.auc.toFixed(2)})`)
          .join('; ')}.`,
  );
  out();
  out(
    `The gateway in-process behind our MilterServer, driven by our MilterClient over loopback (no MTA), one connection per message, from outside (${r.client}) to bob@example.net. Timed client side: end-of-body packet sent -> final reply received (process.hrtime.bigint); "server µs" is the application's own endOfMessage time. ${r.warmUpRounds} untimed warm-up rounds, then ${samples} samples per kind (more when a kind has more variants: one per variant), round-robin in a shuffled order each round, fewer-sampled kinds spread evenly over the rounds. ${r.seconds.toFixed(1)} s timed. Good padding in family 1: ${r.paddingValue} (found with the key). Δ median against the family's other kinds, with a bootstrap 95% interval; Δ / IQR: the difference in units of the row's own interquartile range; Mann–Whitney p two-sided. Load average when the bench began: ${load}.`,
  );
  out();
  const head =
    '| family | kind | capture | variants | n | median µs | p10 µs | p90 µs | server median µs | ratio to genuine | vs | Δ median µs [95% CI] | Δ / IQR | AUC | Mann–Whitney p | reply · logged action |';
  const rule = '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---|';
  out(head);
  out(rule);
  for (const x of r.rows) out(fmtRow(x));
  out();
  out(
    'CBC padding: valid vs invalid, over every mutation whose change reaches the last (padding) block: family 1, blocks appended, block truncated; validity by decrypting with the key.',
  );
  out();
  out(head);
  out(rule);
  for (const x of r.padding) out(fmtRow(x));
  out();
  const capture = 'cbc-oaep';
  const names = [...new Set(r.pairs.filter((x) => x.capture === capture).map((x) => x.a))];
  out(
    `Every two kinds of the ${capture} capture: Δ median µs (row minus column) and AUC; **bold**: told apart (|AUC − 0.5| ≥ 0.1, p < 0.001).`,
  );
  out();
  out(`| row − column | ${names.join(' | ')} |`);
  out(`|---|${names.map(() => '---:').join('|')}|`);
  for (const a of names) {
    const cells = names.map((b) => {
      const x = r.pairs.find((y) => y.capture === capture && y.a === a && y.b === b);
      if (!x) return '-';
      const cell = `${signed(x.delta)} (${x.auc.toFixed(2)})`;
      return apart(x) ? `**${cell}**` : cell;
    });
    out(`| ${a} | ${cells.join(' | ')} |`);
  }
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
