/**
 * One large message through the transform in a fresh process; prints the
 * peak RSS (getrusage maxRSS) and the RSS just before the transform.
 *
 *   node dist/bench/smime-memory.js prepare SIZE DIR    keys and a protected message into DIR
 *   node dist/bench/smime-memory.js baseline|sign+encrypt|decrypt+verify SIZE DIR
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadIdentities } from '../src/pki/identities.js';
import { generateDomainPki } from '../src/pki/keygen.js';
import { writeDomainPki } from '../src/pki/keygen-files.js';
import { transformInbound } from '../src/smime/inbound.js';
import { transformOutbound } from '../src/smime/outbound.js';
import { makeMessage } from './smime-bench.js';

const [mode = 'baseline', sizeText = '26214400', dir = '.'] = process.argv.slice(2);
const size = Number(sizeText);

async function outboundContext() {
  const ids = await loadIdentities(dir, ['example.org', 'example.net']);
  const org = ids.get('example.org')!;
  const net = ids.get('example.net')!;
  const encryption = net.keys.find((k) => k.label === 'encrypt')!;
  return {
    ctx: {
      signer: org.signer!,
      recipients: [{ certificate: encryption.certificate }],
      options: { sign: true, encrypt: true },
    },
    inbound: { keys: net.decryptionKeys },
  };
}

if (mode === 'prepare') {
  for (const domain of ['example.org', 'example.net'])
    await writeDomainPki(dir, domain, await generateDomainPki(domain));
  const { ctx } = await outboundContext();
  const r = await transformOutbound(makeMessage(size), ctx);
  if (!r.ok) throw new Error(r.error.message);
  writeFileSync(join(dir, 'protected.eml'), r.message);
} else {
  const { ctx, inbound } = await outboundContext();
  const input =
    mode === 'decrypt+verify'
      ? readFileSync(join(dir, 'protected.eml'))
      : mode === 'sign+encrypt'
        ? makeMessage(size)
        : undefined;
  global.gc?.();
  const baseline = process.memoryUsage().rss;
  if (mode === 'sign+encrypt') {
    const r = await transformOutbound(input!, ctx);
    if (!r.ok) throw new Error(r.error.message);
  } else if (mode === 'decrypt+verify') {
    const r = await transformInbound(input!, inbound);
    if (!r.ok || !r.report.layers[1]?.signers?.[0]?.valid) throw new Error('decrypt+verify failed');
  }
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(`${JSON.stringify({ peak, baseline })}\n`);
}
