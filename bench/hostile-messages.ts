/**
 * Inbound messages built to cost the most a message may make us do: a
 * certificate bomb, a signature of a thousand signers, an envelope for ten
 * thousand recipients (ours last), a signed message at the size bound, and
 * a BER SignedData of as many elements as asn1js is let read, small enough
 * to be transformed on the event loop. Each from example.net (its domain
 * key) to bob@example.org.
 */

import * as der from '../src/cms/der.js';
import { createEnvelope } from '../src/cms/envelope.js';
import { OID } from '../src/cms/oids.js';
import { createSignedData } from '../src/cms/sign.js';
import { DEFAULT_MIME_LIMITS, encodeBase64Lines } from '../src/mime/index.js';
import type { DomainPki } from '../src/pki/keygen.js';
import { multipartSigned } from '../src/smime/wire.js';
import { CONTENT, editChildren } from '../test/helpers/der-edit.js';

export interface HostileMessage {
  /** For BENCH_HOSTILE. */
  readonly key: 'bomb' | 'signers' | 'recipients' | 'huge' | 'ber';
  readonly name: string;
  readonly message: Buffer;
  /**
   * The message again as the bytes around its SignedData's base64 and that
   * SignedData, whose certificates the sender renumbers for each message
   * (freshCertificates): an attacker does, and a certificate already parsed
   * costs nothing the second time.
   */
  readonly parts?: { readonly before: Buffer; readonly der: Buffer; readonly after: Buffer };
}

/** The serial numbers of a bomb's certificates start so (INTEGER of 8 octets); the last two count. */
const SERIAL_MARK = Buffer.from([0x02, 0x08, 0x5a, 0xfe, 0xed, 0x00]);

/** Gives every bomb certificate in `der` the number `n` (in place). */
export function freshCertificates(der: Buffer, n: number): void {
  for (let at = der.indexOf(SERIAL_MARK); at >= 0; at = der.indexOf(SERIAL_MARK, at + 1))
    der.writeUInt16BE(n & 0xffff, at + SERIAL_MARK.length + 2);
}

const OUTER = Buffer.from(
  'From: Mallory <mallory@example.net>\r\nTo: Bob <bob@example.org>\r\nSubject: hostile\r\nMIME-Version: 1.0\r\n',
);

/** A text/plain entity of about `size` bytes, CRLF throughout. */
function textEntity(size: number): Buffer {
  const head = Buffer.from('Content-Type: text/plain; charset=us-ascii\r\n\r\n');
  const line = Buffer.from(
    'Nothing to see here, just a message of the usual kind, 0123456789.\r\n',
  );
  const out = Buffer.allocUnsafe(Math.max(size, head.length + line.length));
  head.copy(out, 0);
  for (let off = head.length; off < out.length; off += line.length)
    line.copy(out, off, 0, Math.min(line.length, out.length - off));
  out.write('\r\n', out.length - 2, 'latin1');
  return out;
}

function pkcs7Head(smimeType: string): Buffer {
  return Buffer.from(
    `Content-Type: application/pkcs7-mime; smime-type=${smimeType}; name="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\n\r\n`,
  );
}

/**
 * SignedData in BER (indefinite lengths: the position reader refuses it,
 * asn1js reads it all) whose certificates field holds `n` NULLs, within the
 * node bound (DEFAULT_ASN1_LIMITS.maxNodes, 200 000).
 */
function berNodeBomb(n: number): Buffer {
  const open = (tag: number) => Buffer.from([tag, 0x80]);
  const close = (levels: number) => Buffer.alloc(2 * levels);
  return Buffer.concat([
    open(0x30),
    der.oid(OID.signedData),
    open(0xa0),
    open(0x30),
    der.int(1),
    der.set(),
    der.seq(der.oid(OID.data), der.context(0, der.octets(Buffer.from('hello')))),
    open(0xa0),
    Buffer.alloc(2 * n, der.nullValue()),
    close(1),
    der.set(),
    close(3),
  ]);
}

function signedMessage(entity: Buffer, signature: Buffer): Buffer {
  return Buffer.concat([OUTER, multipartSigned(entity, signature, 'sha-256')]);
}

export async function hostileMessages(
  ours: DomainPki,
  sender: DomainPki,
): Promise<HostileMessage[]> {
  const id = {
    certificate: sender.signing.certificate,
    chain: [sender.ca.certificate],
    privateKey: sender.signing.privateKey,
  };
  const entity = textEntity(10 * 1024);
  const signature = await createSignedData(entity, id);
  // The signer's certificate again and again, each with a serial number of its own.
  const certificate = sender.signing.certificate.der;
  const copies = Array.from({ length: 5000 }, (_, i) => {
    const serial = der.intBytes(
      Buffer.concat([SERIAL_MARK.subarray(2), Buffer.from([i >> 8, i, 0, 0])]),
    );
    return editChildren(certificate, [0], ([version, , ...rest]) => [version!, serial, ...rest]);
  });
  const bomb = editChildren(signature, [...CONTENT, 3], (certs) => [...certs, ...copies]);
  const signers = editChildren(signature, [...CONTENT, 4], ([si]) =>
    new Array<Buffer>(1000).fill(si!),
  );
  // Ours is the 10 001st recipient: past the bound, so this is the most the search costs.
  const envelope = createEnvelope(entity, [
    { certificate: sender.encryption.certificate },
    { certificate: ours.encryption.certificate },
  ]);
  const recipients = editChildren(envelope, [...CONTENT, 1], ([other, us]) => [
    ...new Array<Buffer>(10_000).fill(other!),
    us!,
  ]);
  // As large as the size bound lets it be.
  const huge = textEntity(DEFAULT_MIME_LIMITS.maxSize - 64 * 1024);
  const hugeSignature = await createSignedData(huge, id);
  const bombMessage = signedMessage(entity, bomb);
  const base64 = encodeBase64Lines(bomb);
  const at = bombMessage.indexOf(base64);
  if (at < 0) throw new Error('the SignedData is not where it was put');
  return [
    {
      key: 'bomb',
      name: 'certificate bomb: 5 000 certificates',
      message: bombMessage,
      parts: {
        before: bombMessage.subarray(0, at),
        der: bomb,
        after: bombMessage.subarray(at + base64.length),
      },
    },
    {
      key: 'signers',
      name: 'many signers: 1 000 SignerInfos',
      message: signedMessage(entity, signers),
    },
    {
      key: 'recipients',
      name: 'many recipients: 10 001 RecipientInfos, ours last',
      message: Buffer.concat([OUTER, pkcs7Head('enveloped-data'), encodeBase64Lines(recipients)]),
    },
    {
      key: 'huge',
      name: 'signed message at the 64 MiB bound',
      message: signedMessage(huge, hugeSignature),
    },
    {
      key: 'ber',
      name: 'BER SignedData of 190 000 elements (0.5 MB: below the offload size)',
      message: Buffer.concat([
        OUTER,
        pkcs7Head('signed-data'),
        encodeBase64Lines(berNodeBomb(190_000)),
      ]),
    },
  ];
}
