/**
 * Real CMS for the fuzzers to mutate: the public RFC 9216 vectors, our own
 * output (signed, enveloped, compressed; RSA, EC, Ed25519; CBC and GCM;
 * whole S/MIME messages from transformOutbound) and `openssl cms` output
 * (BER with indefinite lengths from -stream, S/MIME text), with the keys and
 * the contents they hold.
 */

import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CertificateInfo, loadCertificatesPem } from '../../src/cms/certificate.js';
import { createCompressedData } from '../../src/cms/compressed.js';
import type { DecryptionKey } from '../../src/cms/decrypt.js';
import { createEnvelope } from '../../src/cms/envelope.js';
import { createSignedData, type SigningIdentity } from '../../src/cms/sign.js';
import {
  decodeBase64,
  encodeBase64Lines,
  type MimeEntity,
  parseEntity,
} from '../../src/mime/index.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { certificatePem, type DomainPki, generateDomainPki, keyPem } from '../../src/pki/keygen.js';
import { transformOutbound } from '../../src/smime/outbound.js';
import type { OutboundOptions } from '../../src/smime/types.js';
import { runTool, withTempDir } from '../helpers/openssl.js';
import { CMS_VECTORS } from '../helpers/vectors.js';

export const CONTENT = Buffer.from(
  'Content-Type: text/plain; charset=us-ascii\r\n\r\nThe domain signs this.\r\n',
);
const MESSAGE = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: figures\r\n' +
    'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCaf\xc3\xa9\r\n' +
    '--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n',
  'latin1',
);
const VECTOR_CONTENT = Buffer.from('This is some sample content.');

type SeedKind = 'signed' | 'detached' | 'enveloped' | 'compressed';

export interface SignedSeed {
  readonly der: Buffer;
  /** The content a detached signature covers. */
  readonly detached?: Buffer;
}

/** A message whose CMS object can be swapped for a mutated one: prefix + base64 + suffix. */
export interface MessageSlot {
  readonly prefix: Buffer;
  readonly der: Buffer;
  readonly suffix: Buffer;
}

export interface CmsCorpus {
  readonly keys: readonly DecryptionKey[];
  readonly validator: AnchorValidator;
  /** Every content a seed carries (latin1): a valid signature or AEAD tag must yield one of them. */
  readonly contents: ReadonlySet<string>;
  readonly signed: readonly SignedSeed[];
  readonly enveloped: readonly Buffer[];
  readonly compressed: readonly Buffer[];
  readonly messages: readonly Buffer[];
  readonly slots: readonly MessageSlot[];
}

const signer = (p: DomainPki): SigningIdentity => ({
  certificate: p.signing.certificate,
  chain: [p.ca.certificate],
  privateKey: p.signing.privateKey,
});
const keyOf = (p: DomainPki): DecryptionKey => ({
  certificate: p.encryption.certificate,
  privateKey: p.encryption.privateKey,
});

function vectors(): { der: Record<string, Buffer>; keys: DecryptionKey[] } {
  const root = CMS_VECTORS;
  const names = [
    'signedByAliceRSA',
    'signedByAliceRSAPSS',
    'signedByCarlosEd25519',
    'signedByCarlosDetached',
    'signedByAliceAndCarlosNoCerts',
    'encryptedForBobRSAOaep',
    'encryptedForBobAndDana',
    'authEnvelopedForBobChaCha20Poly1305',
    'authEnvelopedForDanaX25519HKDF',
    'encryptedKekri',
  ];
  const der = Object.fromEntries(
    names.map((n) => [n, readFileSync(join(root, 'binary-files', `${n}.p7m`))]),
  );
  const cert = (n: string): CertificateInfo =>
    loadCertificatesPem(readFileSync(join(root, 'certs-and-keys', n), 'utf8'))[0]!;
  const key = (n: string) => createPrivateKey(readFileSync(join(root, 'certs-and-keys', n)));
  return {
    der,
    keys: [
      { certificate: cert('lamps-bob.encrypt.crt'), privateKey: key('lamps-bob.decrypt.p8.pem') },
      { certificate: cert('lamps-dana.encrypt.crt'), privateKey: key('lamps-dana.decrypt.p8.pem') },
    ],
  };
}

/** `openssl cms` output for our keys; a variant this OpenSSL cannot make is left out. */
async function opensslOutputs(
  rsa: DomainPki,
  ec: DomainPki,
): Promise<{ der: { kind: SeedKind; der: Buffer }[]; smime: Buffer[] }> {
  return withTempDir(async (dir) => {
    const p = (n: string) => join(dir, n);
    await writeFile(p('content'), CONTENT);
    await writeFile(p('message'), MESSAGE);
    await writeFile(p('sign.crt'), certificatePem(rsa.signing.certificate));
    await writeFile(p('sign.key'), keyPem(rsa.signing.privateKey));
    await writeFile(p('rsa.crt'), certificatePem(rsa.encryption.certificate));
    await writeFile(p('ec.crt'), certificatePem(ec.encryption.certificate));
    const signArgs = ['-signer', p('sign.crt'), '-inkey', p('sign.key')];
    const variants: [string[], SeedKind | 'smime'][] = [
      [['-sign', '-nodetach', '-stream', '-binary', ...signArgs, '-in', p('content')], 'signed'],
      [['-sign', '-binary', ...signArgs, '-in', p('content')], 'detached'],
      [['-encrypt', '-stream', '-aes-256-cbc', '-in', p('content'), p('rsa.crt')], 'enveloped'],
      [
        [
          '-encrypt',
          '-aes-128-cbc',
          '-in',
          p('content'),
          '-recip',
          p('rsa.crt'),
          '-keyopt',
          'rsa_padding_mode:oaep',
        ],
        'enveloped',
      ],
      [['-encrypt', '-aes-256-gcm', '-in', p('content'), p('ec.crt')], 'enveloped'],
      [['-compress', '-in', p('content')], 'compressed'],
      [['-sign', ...signArgs, '-in', p('message')], 'smime'],
      [['-sign', '-nodetach', ...signArgs, '-in', p('message')], 'smime'],
      [['-encrypt', '-aes-256-cbc', '-in', p('message'), p('rsa.crt')], 'smime'],
      [['-compress', '-in', p('message')], 'smime'],
    ];
    const der: { kind: SeedKind; der: Buffer }[] = [];
    const smime: Buffer[] = [];
    for (const [args, kind] of variants) {
      const form = kind === 'smime' ? 'SMIME' : 'DER';
      const r = await runTool('openssl', ['cms', ...args, '-outform', form]);
      if (r.code !== 0) continue;
      if (kind === 'smime') smime.push(r.stdout);
      else der.push({ kind, der: r.stdout });
    }
    return { der, smime };
  });
}

/** `application/pkcs7-mime` around a CMS object, as a whole message. */
export function pkcs7Message(der: Buffer, smimeType: string): Buffer {
  return Buffer.concat([
    Buffer.from(
      `From: a@example.net\r\nTo: b@example.org\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n`,
    ),
    encodeBase64Lines(der),
  ]);
}

/** Where the CMS object of a message sits (top-level pkcs7-mime, or a multipart/signed signature). */
function slotOf(message: Buffer): MessageSlot | undefined {
  let e: MimeEntity;
  try {
    e = parseEntity(message);
  } catch {
    return undefined;
  }
  const holder = e.contentType.mediaType === 'multipart/signed' ? e.parts?.[1] : e;
  if (holder?.transferEncoding !== 'base64' || holder.body.length === 0) return undefined;
  const start = holder.body.byteOffset - message.byteOffset;
  return {
    prefix: message.subarray(0, start),
    der: decodeBase64(holder.body),
    suffix: message.subarray(start + holder.body.length),
  };
}

export function fillSlot(slot: MessageSlot, der: Buffer): Buffer {
  return Buffer.concat([slot.prefix, encodeBase64Lines(der), slot.suffix]);
}

export async function buildCmsCorpus(): Promise<CmsCorpus> {
  const [rsa, ec, ed] = await Promise.all([
    generateDomainPki('example.org', { algo: 'rsa-2048' }),
    generateDomainPki('example.net', { algo: 'ec-p256' }),
    generateDomainPki('example.com', { algo: 'ed25519' }),
  ]);
  const v = vectors();
  const contents = new Set([CONTENT, VECTOR_CONTENT, MESSAGE].map((c) => c.toString('latin1')));

  const signed: SignedSeed[] = [];
  for (const p of [rsa, ec, ed]) {
    signed.push({ der: await createSignedData(CONTENT, signer(p), { detached: false }) });
    signed.push({ der: await createSignedData(CONTENT, signer(p)), detached: CONTENT });
  }
  signed.push({
    der: await createSignedData(CONTENT, signer(rsa), { rsaPss: true, detached: false }),
  });
  for (const n of ['signedByAliceRSA', 'signedByAliceRSAPSS', 'signedByCarlosEd25519'])
    signed.push({ der: v.der[n]! });
  signed.push({ der: v.der['signedByCarlosDetached']!, detached: VECTOR_CONTENT });
  signed.push({ der: v.der['signedByAliceAndCarlosNoCerts']! });

  const enveloped: Buffer[] = [
    createEnvelope(CONTENT, [{ certificate: rsa.encryption.certificate }]),
    createEnvelope(
      CONTENT,
      [{ certificate: rsa.encryption.certificate, keyTransport: 'rsa-pkcs1' }],
      {
        cipher: 'aes-128-cbc',
      },
    ),
    createEnvelope(CONTENT, [{ certificate: rsa.encryption.certificate }], {
      cipher: 'aes-256-gcm',
    }),
    createEnvelope(CONTENT, [{ certificate: ec.encryption.certificate }], {
      cipher: 'aes-128-gcm',
    }),
    createEnvelope(CONTENT, [
      { certificate: ec.encryption.certificate },
      { certificate: rsa.encryption.certificate },
    ]),
    ...[
      'encryptedForBobRSAOaep',
      'encryptedForBobAndDana',
      'authEnvelopedForBobChaCha20Poly1305',
      'authEnvelopedForDanaX25519HKDF',
      'encryptedKekri',
    ].map((n) => v.der[n]!),
  ];
  const compressed = [createCompressedData(CONTENT), createCompressedData(Buffer.alloc(5000, 'x'))];
  contents.add(Buffer.alloc(5000, 'x').toString('latin1'));

  const ossl = await opensslOutputs(rsa, ec);
  for (const { kind, der } of ossl.der) {
    if (kind === 'signed') signed.push({ der });
    else if (kind === 'detached') signed.push({ der, detached: CONTENT });
    else if (kind === 'enveloped') enveloped.push(der);
    else compressed.push(der);
  }

  const outbound = async (options: OutboundOptions, recipients: DomainPki[]) => {
    const r = await transformOutbound(MESSAGE, {
      signer: signer(rsa),
      recipients: recipients.map((p) => ({ certificate: p.encryption.certificate })),
      options,
    });
    if (!r.ok) throw new Error(`corpus: ${r.error.message}`);
    return r.message;
  };
  const messages: Buffer[] = [
    await outbound({ sign: true, encrypt: false }, []),
    await outbound({ sign: true, encrypt: false, signatureFormat: 'opaque' }, []),
    await outbound({ sign: false, encrypt: true }, [rsa]),
    await outbound({ sign: true, encrypt: true }, [rsa, ec]),
    await outbound({ sign: true, encrypt: true, tripleWrap: true }, [ec]),
    await outbound({ sign: true, encrypt: true, headerProtection: true }, [rsa]),
    pkcs7Message(createCompressedData(MESSAGE), 'compressed-data'),
    ...ossl.smime,
    ...[
      ['encryptedForBobRSAOaep', 'enveloped-data'],
      ['authEnvelopedForDanaX25519HKDF', 'authEnveloped-data'],
      ['signedByAliceRSA', 'signed-data'],
    ].map(([n, t]) => pkcs7Message(v.der[n!]!, t!)),
  ];
  const slots = messages.map(slotOf).filter((s): s is MessageSlot => s !== undefined);
  return {
    keys: [keyOf(rsa), keyOf(ec), keyOf(ed), ...v.keys],
    validator: new AnchorValidator([rsa.ca.certificate, ec.ca.certificate, ed.ca.certificate]),
    contents,
    signed,
    enveloped,
    compressed,
    messages,
    slots,
  };
}
