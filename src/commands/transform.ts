/**
 * `domsec-milter transform --direction outbound|inbound [--from A] [--to A ...]`:
 * the milter's transform on one message, stdin to stdout, the report as JSON
 * on stderr. Sender and recipients default to the From and To/Cc headers.
 */

import { parseArgs } from 'node:util';
import { MemoryCache } from '../cache/memory.js';
import type { Config } from '../config.js';
import { domainOf } from '../gateway/direction.js';
import { planOutbound } from '../gateway/outbound-plan.js';
import { findAll, headerValue, splitMessage } from '../mime/index.js';
import { loadIdentities } from '../pki/identities.js';
import { allDecryptionKeys, loadPki } from '../pki/setup.js';
import { transformInbound } from '../smime/inbound.js';
import { transformOutbound } from '../smime/outbound.js';
import { reportToJson } from '../smime/report-json.js';
import type { TransformResult } from '../smime/types.js';
import { UsageError } from './usage.js';

export interface TransformIo {
  readonly stdin: () => Promise<Buffer>;
  readonly stdout: (b: Buffer) => void;
  readonly stderr: (s: string) => void;
}

const ADDRESS = /[^\s<>,;:"]+@[^\s<>,;:"]+/g;

function addressesIn(message: Buffer, names: string[]): string[] {
  const { headers } = splitMessage(message);
  return names.flatMap((n) =>
    findAll(headers, n).flatMap((f) => headerValue(f).match(ADDRESS) ?? []),
  );
}

/** Returns the exit code: 0 transformed (or nothing to do), 1 failed. */
export async function transformCommand(
  args: string[],
  config: Config,
  io: TransformIo,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      direction: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string', multiple: true },
    },
    strict: true,
  });
  if (values.direction !== 'outbound' && values.direction !== 'inbound') {
    throw new UsageError('transform needs --direction outbound or --direction inbound');
  }
  const message = await io.stdin();
  const identities = await loadIdentities(config.keysDir, config.localDomains, {
    passphrase: config.keysPassphrase,
  });
  const pki = await loadPki(config, { cache: new MemoryCache() });
  let result: TransformResult;
  if (values.direction === 'inbound') {
    result = await transformInbound(message, {
      keys: allDecryptionKeys(identities),
      validator: pki.validator,
    });
  } else {
    const from = values.from ?? addressesIn(message, ['from'])[0];
    if (!from) throw new UsageError('no sender: give --from or a From header');
    const local = new Set(config.localDomains);
    const to = (values.to ?? addressesIn(message, ['to', 'cc'])).filter(
      (a) => !local.has(domainOf(a) ?? ''),
    );
    const plan = await planOutbound(from, to, identities, pki.partners, {
      sign: config.outboundSign,
      encrypt: config.outboundEncrypt,
      encryptRequiredDomains: new Set(),
    });
    if (plan.kind === 'fail') {
      io.stderr(
        `${JSON.stringify({ direction: 'outbound', ok: false, error: { code: plan.code, message: plan.message } })}\n`,
      );
      return 1;
    }
    if (plan.kind === 'pass') {
      io.stdout(message);
      io.stderr(
        `${JSON.stringify({ direction: 'outbound', ok: true, actions: [], notes: plan.notes })}\n`,
      );
      return 0;
    }
    result = await transformOutbound(message, plan.context);
  }
  io.stderr(
    `${JSON.stringify(reportToJson(result.report, result.ok ? undefined : result.error))}\n`,
  );
  if (!result.ok) return 1;
  io.stdout(result.message);
  return 0;
}

export function readStdin(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks)));
    process.stdin.on('error', reject);
  });
}
