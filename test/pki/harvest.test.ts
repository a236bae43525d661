import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { MemoryCache } from '../../src/cache/memory.js';
import { OID } from '../../src/cms/oids.js';
import { AnchorValidator } from '../../src/pki/anchor-validator.js';
import { HarvestedCertificates, harvest } from '../../src/pki/harvest.js';
import { identityFromKeys } from '../../src/pki/identities.js';
import { type DomainPki, generateDomainPki } from '../../src/pki/keygen.js';
import { transformInbound } from '../../src/smime/inbound.js';
import { transformOutbound } from '../../src/smime/outbound.js';

const MESSAGE = Buffer.from(
  'From: alice@example.org\r\nTo: bob@example.net\r\nSubject: s\r\n\r\nbody\r\n',
);

describe('harvesting partner certificates from verified mail', () => {
  let org: DomainPki;
  let signed: Buffer;
  before(async () => {
    org = await generateDomainPki('example.org');
    const id = identityFromKeys('example.org', [
      {
        label: 'sign',
        certificate: org.signing.certificate,
        chain: [],
        privateKey: org.signing.privateKey,
      },
      {
        label: 'encrypt',
        certificate: org.encryption.certificate,
        chain: [],
        privateKey: org.encryption.privateKey,
      },
    ]);
    assert.deepEqual(
      id.signer?.extraCertificates?.map((c) => c.fingerprint),
      [org.encryption.certificate.fingerprint],
    );
    const r = await transformOutbound(MESSAGE, {
      signer: id.signer!,
      recipients: [],
      options: { sign: true, encrypt: false },
    });
    assert.ok(r.ok);
    signed = r.message;
  });

  test('a trusted signature yields the domain encryption certificate and the signer capabilities', async () => {
    const validator = new AnchorValidator([org.ca.certificate]);
    const v = await transformInbound(signed, { keys: [], validator });
    const found = await harvest(v.report, 'example.org', validator);
    assert.equal(found?.certificate.fingerprint, org.encryption.certificate.fingerprint);
    assert.ok(found?.capabilities.includes(OID.aes256Gcm));
    const store = new HarvestedCertificates(new MemoryCache());
    await store.store('example.org', found!.certificate, found!.capabilities, new Date());
    const back = await store.lookup('example.org', new Date());
    assert.equal(
      back.status === 'found' && back.certificate.fingerprint,
      org.encryption.certificate.fingerprint,
    );
    assert.deepEqual(back.status === 'found' && back.capabilities, found!.capabilities);
    assert.deepEqual(await store.lookup('example.com', new Date()), { status: 'not-found' });
  });

  test('nothing is harvested from an untrusted signer or for another domain', async () => {
    const other = await generateDomainPki('example.com');
    const untrusted = new AnchorValidator([other.ca.certificate]);
    const v = await transformInbound(signed, { keys: [], validator: untrusted });
    assert.equal(await harvest(v.report, 'example.org', untrusted), undefined);
    const trusted = new AnchorValidator([org.ca.certificate]);
    const w = await transformInbound(signed, { keys: [], validator: trusted });
    assert.equal(
      await harvest(w.report, 'example.net', trusted),
      undefined,
      'the signer must name the sender domain',
    );
  });

  test('while the shared cache is unreachable, a domain not in memory is a temporary failure, not "none"', async () => {
    // What RedisCache is during an outage: memory answers alone.
    const memory = new MemoryCache();
    const degraded = Object.assign(memory, { degraded: true });
    const store = new HarvestedCertificates(degraded);
    const r = await store.lookup('example.org', new Date());
    assert.equal(r.status, 'temporary-failure');
    assert.match(r.status === 'temporary-failure' ? r.reason : '', /shared cache .*unreachable/);
    // What memory does hold still counts.
    await store.import('example.org', org.encryption.certificate, [], new Date());
    assert.equal((await store.lookup('example.org', new Date())).status, 'found');
  });
});
