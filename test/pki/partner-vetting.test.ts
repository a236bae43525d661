// Partner certificates are checked again when used: a harvested certificate
// revoked since (CRL over HTTP, made by openssl ca) is no longer encrypted
// to, and one imported into the shared cache must chain to an anchor like any
// other; the static directory stays the administrator's explicit choice.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemoryCache } from '../../src/cache/memory.js';
import { loadCertificatesPem, pemBlocks } from '../../src/cms/certificate.js';
import { loadConfig } from '../../src/config.js';
import { HarvestedCertificates } from '../../src/pki/harvest.js';
import { loadPki } from '../../src/pki/setup.js';
import { type HttpFiles, startHttpFiles } from '../helpers/http-files.js';
import { createTestCa, type TestCa, type TestLeaf } from '../helpers/pki.js';

let dir: string;
let http: HttpFiles;
let ca: TestCa;
let good: TestLeaf;
let revoked: TestLeaf;

const partner = (name: string) => ({
  commonName: name,
  rfc822Names: [`domain-confidentiality-authority@${name}`],
  purpose: 'encryption' as const,
});

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-vetting-'));
  http = await startHttpFiles();
  ca = await createTestCa(dir, 'Partner CA');
  const crlUrl = http.url('/partner.crl');
  [good, revoked] = await Promise.all([
    ca.issue({ ...partner('good.example'), crlUrl }),
    ca.issue({ ...partner('revoked.example'), crlUrl }),
  ]);
  await ca.revoke(revoked.certPath, 'keyCompromise');
  http.set('/partner.crl', pemBlocks((await ca.crl()).pem, 'X509 CRL')[0]!);
  await writeFile(join(dir, 'anchors.pem'), ca.certPem);
  await mkdir(join(dir, 'partners'));
  await writeFile(join(dir, 'partners', 'revoked.pem'), revoked.certPem);
});

after(async () => {
  await http.stop();
  await rm(dir, { recursive: true, force: true });
});

async function setup(env: Record<string, string>) {
  const config = loadConfig({
    DOMSEC_TRUST_ANCHORS: join(dir, 'anchors.pem'),
    DOMSEC_REVOCATION: 'crl',
    DOMSEC_LOOKUP_TIMEOUT: '2',
    ...env,
  });
  const cache = new MemoryCache();
  const harvested = new HarvestedCertificates(cache);
  const pki = await loadPki(config, { cache, harvested });
  const at = new Date();
  for (const leaf of [good, revoked]) {
    const c = loadCertificatesPem(leaf.certPem)[0]!;
    await harvested.store(c.rfc822Names[0]!.split('@')[1]!, c, [], at);
  }
  return pki;
}

describe('partner certificates vetted at the time of use', () => {
  it('a harvested certificate still good is used', async () => {
    const pki = await setup({ DOMSEC_PARTNER_SOURCES: 'harvested' });
    const r = await pki.partners.lookup('good.example');
    assert.equal(r.status, 'found');
  });

  it('a harvested certificate revoked since is not', async () => {
    const pki = await setup({ DOMSEC_PARTNER_SOURCES: 'harvested' });
    assert.equal((await pki.partners.lookup('revoked.example')).status, 'not-found');
  });

  it('CRL unreachable under hard-fail: a temporary failure (the MTA keeps the mail)', async () => {
    http.set('/partner.crl', 'hang');
    try {
      const pki = await setup({
        DOMSEC_PARTNER_SOURCES: 'harvested',
        DOMSEC_REVOCATION_POLICY: 'hard-fail',
        DOMSEC_LOOKUP_TIMEOUT: '1',
      });
      const r = await pki.partners.lookup('good.example');
      assert.equal(r.status, 'temporary-failure');
      if (r.status === 'temporary-failure') assert.match(r.reason, /revocation status unavailable/);
    } finally {
      http.set('/partner.crl', pemBlocks((await ca.crl()).pem, 'X509 CRL')[0]!);
    }
  });

  it("the static directory is the administrator's choice: used as it is", async () => {
    const pki = await setup({
      DOMSEC_PARTNER_SOURCES: 'directory',
      DOMSEC_PARTNER_CERTS: join(dir, 'partners'),
    });
    assert.equal((await pki.partners.lookup('revoked.example')).status, 'found');
  });

  it('a certificate imported into the shared cache (certs import, or anyone who can write to Redis) must chain to an anchor too', async () => {
    // A rogue partner CA nobody configured: as a writer to Redis would plant one.
    const rogueCa = await createTestCa(dir, 'Rogue CA');
    const rogue = loadCertificatesPem(
      (await rogueCa.issue(partner('planted.example'))).certPem,
    )[0]!;
    const trusted = loadCertificatesPem(good.certPem)[0]!;
    const config = loadConfig({
      DOMSEC_TRUST_ANCHORS: join(dir, 'anchors.pem'),
      DOMSEC_REVOCATION: 'off',
      DOMSEC_PARTNER_SOURCES: 'harvested',
    });
    const cache = new MemoryCache();
    const harvested = new HarvestedCertificates(cache);
    const pki = await loadPki(config, { cache, harvested });
    await harvested.import('planted.example', rogue, [], new Date());
    await harvested.import('good.example', trusted, [], new Date());
    assert.equal((await pki.partners.lookup('planted.example')).status, 'not-found');
    const r = await pki.partners.lookup('good.example');
    assert.equal(r.status, 'found');
    assert.equal(r.status === 'found' ? r.source : '', 'imported');
  });
});
