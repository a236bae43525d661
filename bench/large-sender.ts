/**
 * Sends large outbound messages to a milter one after another until killed,
 * printing the seconds each took: the load of the large-message bench, in a
 * process of its own so its copying never delays the latency being measured.
 * Usage: node large-sender.js PORT SIZE
 */

import { performance } from 'node:perf_hooks';
import { runMessage, servedMilter } from '../test/helpers/gateway-app.js';
import { makeMessage } from './smime-bench.js';

const [port, size] = process.argv.slice(2).map(Number);
const milter = servedMilter(port!);
const large = makeMessage(size!);
for (;;) {
  const t = performance.now();
  const r = await runMessage(milter, large, {
    from: '<alice@example.org>',
    rcpts: ['<bob@example.net>'],
    address: '127.0.0.1',
  });
  if (!r.edits.some((e) => e.type === 'replaceBody')) {
    console.error('large message was not protected');
    process.exit(1);
  }
  console.log(((performance.now() - t) / 1000).toFixed(3));
}
