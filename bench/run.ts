/**
 * `npm run bench`: runs the benchmarks and writes a markdown table to
 * bench/results/latest.md (and stdout). Options through the environment:
 * BENCH_MESSAGES (2000), BENCH_ROUNDS (3), BENCH_ONLY (protocol|smime|postfix|gateway).
 * The gateway bench needs OpenDKIM (`apt-get install opendkim`).
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { gatewayBenchmarks } from './gateway-bench.js';
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
  const rows = await gatewayBenchmarks({ messages, rounds, sizes: [10 * 1024, 100 * 1024] }, (s) =>
    process.stderr.write(`${s}\n`),
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
