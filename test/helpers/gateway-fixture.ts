/**
 * The two-domain set-up the gateway end-to-end suites share, whatever MTA
 * carries the mail: example.org's milter signs and encrypts outbound mail,
 * example.net's decrypts and verifies inbound mail. Also the checks that the
 * protected mail is right, made with openssl (the other S/MIME side).
 */

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificatePem, generateDomainPki } from '../../src/pki/keygen.js';
import { writeDomainPki } from '../../src/pki/keygen-files.js';
import { type ServingMilter, startServe } from './cli.js';
import { cmsDecrypt, cmsVerify } from './openssl.js';
import type { SinkMessage, SmtpSink } from './smtp-sink.js';
import { until } from './wait.js';

export const BODY = 'Hello Bob,\r\nthe figures are attached.\r\n';

/** A folded header field the gateway must leave exactly as it is. */
export const FOLDED = 'References: <thread-1@example.org>\r\n <thread-2@example.org>\r\n';

export function message(id: string, to = 'Bob <bob@example.net>', extra = ''): string {
  return `From: Alice <alice@example.org>\r\nTo: ${to}\r\nSubject: figures ${id}\r\nMessage-ID: <${id}@example.org>\r\n${FOLDED}${extra}\r\n${BODY}`;
}

/**
 * The header section as the MTA wrote it: the folded field untouched (not
 * deleted and re-added unfolded), and the fields the milter added with the
 * usual space after the colon.
 */
export function assertHeadersIntact(got: SinkMessage, added: readonly string[]): void {
  const head = got.data.toString('latin1', 0, got.data.indexOf('\r\n\r\n') + 2);
  assert.ok(head.includes(`\r\n${FOLDED}`), `folded References kept:\n${head}`);
  for (const name of added)
    assert.match(
      head,
      new RegExp(`(^|\\r\\n)${name}: \\S`),
      `${name} with a space after the colon:\n${head}`,
    );
}

export function byId(messages: SinkMessage[], id: string): SinkMessage {
  const m = messages.find((x) => x.header('message-id') === `<${id}@example.org>`);
  assert.ok(m, `message ${id} not delivered`);
  return m;
}

/**
 * Waits for message `id` at the sink. By id, not by count: a message accepted
 * for some recipients of an earlier test may still be on its way.
 */
export async function delivered(
  sink: SmtpSink,
  id: string,
  timeoutMs = 30_000,
): Promise<SinkMessage> {
  const mine = (x: SinkMessage): boolean => x.header('message-id') === `<${id}@example.org>`;
  await until(() => sink.messages.some(mine), timeoutMs, `message ${id} delivered`);
  return byId(sink.messages, id);
}

export interface GatewayKeys {
  netEncryptCert: string;
  netEncryptKey: string;
  orgCa: string;
  netCa: string;
}

export interface GatewayDomains {
  keys: GatewayKeys;
  /** Fingerprint of example.org's encryption certificate (harvested by example.net). */
  orgEncryption: string;
  /** example.org: outbound signing and encryption; example.com requires encryption. */
  milterA: ServingMilter;
  /** example.net: inbound decryption and verification. */
  milterB: ServingMilter;
  /** example.org's milter configuration, to start another one like milterA. */
  orgEnv: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Keys for both domains, example.net's certificate as example.org's partner,
 * both milters (`env` added to both, e.g. a quieter log level for long runs).
 */
export async function startGatewayDomains(
  env: Record<string, string> = {},
): Promise<GatewayDomains> {
  const dir = await mkdtemp(join(tmpdir(), 'domsec-gw-'));
  const [org, net] = await Promise.all([
    generateDomainPki('example.org'),
    generateDomainPki('example.net'),
  ]);
  await writeDomainPki(join(dir, 'org'), 'example.org', org);
  await writeDomainPki(join(dir, 'net'), 'example.net', net);
  await mkdir(join(dir, 'partners'));
  await writeFile(
    join(dir, 'partners/example.net.pem'),
    certificatePem(net.encryption.certificate),
  );
  const keys = {
    netEncryptCert: join(dir, 'net/example.net.encrypt.crt.pem'),
    netEncryptKey: join(dir, 'net/example.net.encrypt.key.pem'),
    orgCa: join(dir, 'org/ca/example.org.ca.crt.pem'),
    netCa: join(dir, 'net/ca/example.net.ca.crt.pem'),
  };
  const orgEnv = {
    DOMSEC_LOCAL_DOMAINS: 'example.org',
    DOMSEC_KEYS_DIR: join(dir, 'org'),
    DOMSEC_PARTNER_CERTS: join(dir, 'partners'),
    DOMSEC_ENCRYPT_REQUIRED_DOMAINS: 'example.com',
    DOMSEC_AUTHSERV_ID: 'mx.example.org',
    ...env,
  };
  const [milterA, milterB] = await Promise.all([
    startServe(orgEnv),
    startServe({
      DOMSEC_LOCAL_DOMAINS: 'example.net',
      DOMSEC_KEYS_DIR: join(dir, 'net'),
      DOMSEC_TRUST_ANCHORS: keys.orgCa,
      // The MTA's test clients connect from 127.0.0.1: they must count as outside.
      DOMSEC_TRUSTED_NETWORKS: '192.0.2.0/24',
      DOMSEC_AUTHSERV_ID: 'mx.example.net',
      ...env,
    }),
  ]);
  return {
    keys,
    orgEncryption: org.encryption.certificate.fingerprint,
    milterA,
    milterB,
    orgEnv,
    async stop() {
      await Promise.all([milterA.stop(), milterB.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Enveloped for example.net only: openssl decrypts it and verifies example.org's signature. */
export async function assertSignedAndEncrypted(out: SinkMessage, keys: GatewayKeys): Promise<void> {
  assertHeadersIntact(out, ['MIME-Version', 'Content-Type']);
  assert.match(
    out.header('content-type') ?? '',
    /^application\/pkcs7-mime; smime-type=enveloped-data/,
  );
  assert.equal(out.data.indexOf(Buffer.from('figures are attached')), -1, 'nothing in clear');
  const decrypted = await cmsDecrypt(out.data, {
    certPath: keys.netEncryptCert,
    keyPath: keys.netEncryptKey,
  });
  assert.ok(decrypted.ok, decrypted.stderr);
  const verified = await cmsVerify(decrypted.content, { caFile: keys.orgCa });
  assert.ok(verified.ok, verified.stderr);
  assert.ok(verified.content.toString().endsWith(BODY));
}

/** The message with a forged result on top, claiming to come from mx.example.net. */
export function withSpoofedResult(data: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from('Authentication-Results: mx.example.net; smime=pass\r\n'),
    data,
  ]);
}

/**
 * Decrypted, one Authentication-Results (ours, smime=pass for example.org's
 * domain signature; the spoofed one removed), and example.org's encryption
 * certificate harvested from the signature.
 */
export function assertArrivedVerified(
  got: SinkMessage,
  subject: string,
  domains: GatewayDomains,
): void {
  assert.ok(got.body().toString().endsWith(BODY), got.body().toString());
  assert.equal(got.header('subject'), subject);
  // The message was sent without Content-Type: none is invented (RFC 2045 defaults).
  assertHeadersIntact(got, ['Authentication-Results']);
  assert.equal(got.header('content-type'), undefined);
  const results = got.headers().get('authentication-results') ?? [];
  assert.equal(results.length, 1, `one result, the spoofed one removed: ${results.join(' | ')}`);
  assert.match(
    results[0]!,
    /^mx\.example\.net;\s+smime=pass\s+body\.smime-identifier=domain-signing-authority@example\.org\s+body\.smime-serial=[0-9A-F]+\s+body\.smime-issuer="CN=example\.org domain CA, O=example\.org"$/,
  );
  const harvested = domains.milterB
    .output()
    .split('\n')
    .filter((l) => l.includes('partner certificate harvested'))
    .map((l) => JSON.parse(l) as { domain: string; certificate: string });
  assert.deepEqual(
    harvested.map((h) => [h.domain, h.certificate]),
    [['example.org', domains.orgEncryption]],
  );
}

/** A signed message altered in transit: one word of the signed body changed. */
export function tampered(signed: SinkMessage): Buffer {
  assert.match(signed.header('content-type') ?? '', /^multipart\/signed/);
  const text = signed.data.toString('latin1');
  assert.ok(text.includes('figures are attached'), 'the signed body is readable');
  return Buffer.from(text.replace('figures are attached', 'figures are ATTACHED'), 'latin1');
}

export const TAMPERED_RESULT =
  /^mx\.example\.net;\s+smime=fail\s+\(the content does not match the signed message digest\)/;
