// Taking the certificates out of a DER SignedData before asn1js parses the
// rest: the same verification outcome as parsing it whole, and BER input
// left to the whole parse.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as asn1js from 'asn1js';
import { createSignedData } from '../../src/cms/sign.js';
import { splitSignedData } from '../../src/cms/signed-data-split.js';
import { verifySignedData } from '../../src/cms/verify.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';

let org: DomainPki;
const content = Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n');

before(async () => {
  org = await generateDomainPki('example.org');
});

const identity = () => ({
  certificate: org.signing.certificate,
  chain: [org.ca.certificate],
  privateKey: org.signing.privateKey,
});

/**
 * The same ContentInfo with the outer wrappers in indefinite-length form
 * (BER), as `openssl cms -stream` writes them; the signed attributes stay DER.
 */
function asBer(der: Buffer): Buffer {
  const ci = asn1js.fromBER(der).result as asn1js.Sequence;
  const explicit = ci.valueBlock.value[1] as asn1js.Constructed;
  const signedData = explicit.valueBlock.value[0] as asn1js.Sequence;
  for (const node of [ci, explicit, signedData]) node.lenBlock.isIndefiniteForm = true;
  return Buffer.from(ci.toBER(false));
}

describe('splitSignedData', () => {
  it('takes out exactly the embedded certificates, and the rest still verifies the same', async () => {
    const sd = await createSignedData(content, identity(), { detached: true });
    const split = splitSignedData(sd);
    assert.ok(split);
    assert.deepEqual(
      split.certificates.map((c) => c.toString('hex')).sort(),
      [org.signing.certificate.der, org.ca.certificate.der].map((c) => c.toString('hex')).sort(),
    );
    assert.ok(split.rest.length < sd.length - org.signing.certificate.der.length);
    const v = await verifySignedData(sd, {
      detachedContent: content,
      validator: new AnchorValidator([org.ca.certificate]),
    });
    assert.equal(v.signers[0]?.valid, true);
    assert.equal(v.signers[0]?.chain?.trusted, true);
    assert.equal(v.certificates.length, 2);
  });

  it('BER (indefinite lengths) is not split, and verifies through the whole parse', async () => {
    const ber = asBer(await createSignedData(content, identity(), { detached: true }));
    assert.equal(splitSignedData(ber), undefined);
    const v = await verifySignedData(ber, { detachedContent: content });
    assert.equal(v.signers[0]?.valid, true);
    assert.equal(v.certificates.length, 2);
  });

  it('the signer certificate alone is split; other shapes are left to the whole parse', async () => {
    const bare = await createSignedData(content, { ...identity(), chain: [] }, { detached: true });
    assert.ok(splitSignedData(bare), 'the signer certificate alone is still split out');
    assert.equal(splitSignedData(Buffer.from([0x30, 0x03, 0x06, 0x01, 0x00])), undefined);
    assert.equal(splitSignedData(Buffer.from('garbage')), undefined);
  });
});
