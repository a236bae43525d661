/** The gateway application in-process behind our MilterServer, configured from env-style settings. */

import assert from 'node:assert/strict';
import {
  type Decision,
  type MessageSpec,
  MilterClient,
  type Modification,
} from '../../protocol/index.js';
import { MemoryCache } from '../../src/cache/memory.js';
import { loadConfig } from '../../src/config.js';
import { type GatewayDeps, gatewayApplication } from '../../src/gateway/application.js';
import { gatewayPolicyFrom } from '../../src/gateway/policy-from-config.js';
import { splitMessage } from '../../src/mime/index.js';
import { identityFromKeys } from '../../src/pki/identities.js';
import type { DomainPki } from '../../src/pki/keygen.js';
import { loadPki } from '../../src/pki/setup.js';
import { startTestMilter, type TestMilter } from './milter.js';

/** A gateway for `domain` holding `keys`; `env` as DOMSEC_* variables; `extra` overrides deps. */
export async function startGatewayMilter(
  domain: string,
  keys: DomainPki,
  env: Record<string, string>,
  extra: Partial<GatewayDeps> = {},
): Promise<TestMilter> {
  const config = loadConfig({
    DOMSEC_LOCAL_DOMAINS: domain,
    DOMSEC_REVOCATION: 'off',
    ...env,
  });
  const pairs = [keys.signing, keys.encryption].map((k, i) => ({
    label: i === 0 ? 'sign' : 'encrypt',
    certificate: k.certificate,
    chain: [keys.ca.certificate],
    privateKey: k.privateKey,
  }));
  const pki = await loadPki(config, { cache: new MemoryCache() });
  const app = gatewayApplication({
    ...gatewayPolicyFrom(config),
    identities: new Map([[domain, identityFromKeys(domain, pairs)]]),
    pki,
    log: { info: () => {}, warn: () => {}, error: () => {} },
    ...extra,
  });
  return startTestMilter(app);
}

export interface MilterOutcome {
  /** Where the transaction ended: 'eom', or the step that refused it ('rcpt', ...). */
  readonly stage: string;
  readonly decision: Decision | undefined;
  readonly edits: readonly Modification[];
}

/** A milter in another process (`domsec-milter serve`), for runMessage: one connection per message. */
export function servedMilter(port: number): Pick<TestMilter, 'client'> {
  return {
    async client() {
      const c = await MilterClient.connect({ kind: 'inet', host: '127.0.0.1', port });
      await c.negotiate();
      return c;
    },
  };
}

/**
 * One message through the milter as Postfix sends it, from the client at
 * `address`; `macros` as Postfix would send them (e.g. `{auth_authen}` at MAIL).
 */
export async function runMessage(
  milter: Pick<TestMilter, 'client'>,
  message: Buffer,
  envelope: {
    from: string;
    rcpts: string[];
    address: string;
    macros?: MessageSpec['macros'];
  },
): Promise<MilterOutcome> {
  const client = await milter.client();
  await client.connectEvent({
    hostname: 'client.example',
    family: 'inet',
    port: 25,
    address: envelope.address,
  });
  const { headers, body } = splitMessage(message);
  const r = await client.sendMessage({
    from: envelope.from,
    rcpts: envelope.rcpts,
    // The value's bytes as they are: UTF-8 header fields (RFC 6532) stay UTF-8.
    headers: headers.map((h) => [h.name, h.raw.subarray(h.name.length + 1)] as const),
    body,
    ...(envelope.macros ? { macros: envelope.macros } : {}),
  });
  client.quit();
  return { stage: r.stage, decision: r.decision, edits: r.eom?.modifications ?? [] };
}

/** The message as the MTA would deliver it after the milter's edits (headers by name and index, body). */
export function applyEdits(message: Buffer, edits: readonly Modification[]): Buffer {
  const { headers, body } = splitMessage(message);
  let fields = headers.map((h) => ({
    name: h.name,
    value: h.raw.toString('latin1').slice(h.name.length + 1),
  }));
  const newBody: Buffer[] = [];
  let bodyReplaced = false;
  for (const e of edits) {
    if (e.type === 'addHeader') fields.push({ name: e.name, value: String(e.value) });
    else if (e.type === 'insertHeader')
      fields.splice(e.index, 0, { name: e.name, value: String(e.value) });
    else if (e.type === 'changeHeader') {
      let seen = 0;
      const at = fields.findIndex(
        (f) => f.name.toLowerCase() === e.name.toLowerCase() && ++seen === e.index,
      );
      assert.ok(at >= 0, `no ${e.name} #${e.index} to change`);
      if (String(e.value) === '') fields = fields.filter((_, i) => i !== at);
      else fields[at] = { name: fields[at]!.name, value: String(e.value) };
    } else if (e.type === 'replaceBody') {
      newBody.push(e.chunk);
      bodyReplaced = true;
    }
  }
  const head = fields.map((f) => `${f.name}:${f.value}\r\n`).join('');
  return Buffer.concat([
    Buffer.from(`${head}\r\n`, 'latin1'),
    bodyReplaced ? Buffer.concat(newBody) : body,
  ]);
}
