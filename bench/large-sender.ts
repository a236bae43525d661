/**
 * Sends large messages to a milter one after another until killed, printing
 * the seconds each took: the load of the large-message and hostile-message
 * benches, in a process of its own so its copying never delays the latency
 * being measured.
 * Usage: node large-sender.js PORT SIZE (outbound, each one must come back protected)
 *        node large-sender.js PORT FILE (inbound, as it is; prints the seconds,
 *        the reply and the smime= result)
 *        node large-sender.js PORT FILE.before FILE.der FILE.after (inbound: the
 *        SignedData FILE.der base64-encoded between the others, its bomb
 *        certificates renumbered for each message)
 */

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { encodeBase64Lines } from '../src/mime/index.js';
import { runMessage, servedMilter } from '../test/helpers/gateway-app.js';
import { freshCertificates } from './hostile-messages.js';
import { makeMessage } from './smime-bench.js';

const [port, what, ...parts] = process.argv.slice(2);
const inbound = Number.isNaN(Number(what));
const milter = servedMilter(Number(port));
const [before, der, after] =
  parts.length === 2 ? [what!, ...parts].map((f) => readFileSync(f)) : [];
let sent = 0;
const next = (): Buffer => {
  if (!before || !der || !after) return large;
  freshCertificates(der, ++sent);
  return Buffer.concat([before, encodeBase64Lines(der), after]);
};
const large = inbound
  ? before
    ? Buffer.alloc(0)
    : readFileSync(what!)
  : makeMessage(Number(what));
const envelope = inbound
  ? { from: '<mallory@example.net>', rcpts: ['<bob@example.org>'], address: '192.0.2.66' }
  : { from: '<alice@example.org>', rcpts: ['<bob@example.net>'], address: '127.0.0.1' };
for (;;) {
  const message = next();
  const t = performance.now();
  const r = await runMessage(milter, message, envelope);
  const seconds = ((performance.now() - t) / 1000).toFixed(3);
  if (inbound) {
    const results = r.edits.flatMap((e) =>
      e.type === 'insertHeader' && e.name === 'Authentication-Results'
        ? [/smime=(\w+)/.exec(String(e.value))?.[1] ?? '?']
        : [],
    );
    console.log(`${seconds} ${r.decision?.type ?? r.stage} ${results.join(',') || '-'}`);
    continue;
  }
  if (!r.edits.some((e) => e.type === 'replaceBody')) {
    console.error('large message was not protected');
    process.exit(1);
  }
  console.log(seconds);
}
