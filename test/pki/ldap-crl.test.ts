// CRLs from LDAP distribution points against real parts: CRLs made by
// `openssl ca -gencrl` stored in a real slapd, certificates whose CRL
// distribution point is that ldap:// URL, checked through PathValidator and
// RevocationChecker; and servers that are down, hang, refer elsewhere or
// flood, for the failure cases.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Attribute, Change, Client } from 'ldapts';
import { MemoryCache } from '../../src/cache/memory.js';
import { type CertificateInfo, loadCertificatesPem, pemBlocks } from '../../src/cms/certificate.js';
import { crlFetcher, fetchCrl } from '../../src/pki/crl-fetch.js';
import { fetchLdapCrl } from '../../src/pki/ldap-crl.js';
import { LdapQueryError } from '../../src/pki/ldap-session.js';
import { PathValidator, type RevocationPolicy } from '../../src/pki/path-validator.js';
import { RevocationChecker } from '../../src/pki/revocation/checker.js';
import { CrlStore } from '../../src/pki/revocation/crl-store.js';
import { fakeLdapServer } from '../helpers/fake-ldap.js';
import { type FakeServer, hangingServer } from '../helpers/fake-tcp.js';
import { type HttpFiles, startHttpFiles } from '../helpers/http-files.js';
import { createTestCa, type TestCa, type TestLeaf } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { startSlapd, type TestSlapd } from '../helpers/slapd.js';

const cert = (pem: string): CertificateInfo => loadCertificatesPem(pem)[0]!;
const crlDer = (pem: string) => pemBlocks(pem, 'X509 CRL')[0]!;

const SUFFIX = 'dc=example,dc=net';
const PKI = `ou=pki,${SUFFIX}`;
const manager = { dn: `cn=manager,${SUFFIX}`, password: 'manager-secret' };

/**
 * An LDAP URL with the DN fully %-encoded: openssl's config syntax splits
 * crlDistributionPoints on commas, and a DN is full of them.
 */
const ldapUrl = (base: string, dn: string, query = '') =>
  `${base}/${encodeURIComponent(dn)}${query}`;

interface Options {
  policy?: RevocationPolicy;
  timeoutMs?: number;
  maxBytes?: number;
}

let dir: string;
let root: TestCa;
let issuing: TestCa;
let slapd: TestSlapd;
let http: HttpFiles;
let referred: FakeServer;
let hanging: FakeServer;
let server: string;
let secureServer: string;

function validator(opts: Options = {}): PathValidator {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const revocation = new RevocationChecker({
    methods: ['crl'],
    cache: new MemoryCache(),
    crls: new CrlStore({
      fetch: crlFetcher({
        timeoutMs,
        ...(opts.maxBytes ? { maxBytes: opts.maxBytes } : {}),
        ldapTls: { ca: slapd.certificatePem! },
      }),
      maxAgeMs: 3600_000,
    }),
    fetch: () => Promise.reject(new Error('no OCSP in these tests')),
    timeoutMs,
    maxTtlSeconds: 3600,
    negativeTtlSeconds: 60,
  });
  return new PathValidator({
    anchors: [cert(root.certPem)],
    intermediates: [cert(issuing.certPem)],
    revocation,
    policy: opts.policy ?? 'hard-fail',
  });
}

const check = (leaf: TestLeaf, opts?: Options) =>
  validator(opts).validate(cert(leaf.certPem), [], new Date());

/** A leaf of the issuing CA whose only CRL distribution point is `crlUrl`. */
const leafAt = (name: string, crlUrl: string) =>
  issuing.issue({ commonName: name, rfc822Names: [`${name}@partner.example`], crlUrl });

/** Sets (or, with no values, removes) an attribute of an entry in the running slapd. */
async function setAttribute(dn: string, type: string, values: Buffer[]): Promise<void> {
  const client = new Client({ url: `ldap://127.0.0.1:${slapd.port}` });
  try {
    await client.bind(manager.dn, manager.password);
    const modification = new Attribute({ type, values });
    await client.modify(dn, [new Change({ operation: 'replace', modification })]);
  } finally {
    await client.unbind();
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'domsec-ldap-crl-'));
  [http, referred, hanging] = await Promise.all([
    startHttpFiles(),
    hangingServer(),
    hangingServer(),
  ]);
  // Entries first, CRLs later: the certificates name the server's port, and
  // the CRLs list certificates issued after the server started.
  slapd = await startSlapd({
    suffix: SUFFIX,
    tls: true,
    manager,
    entries: [
      { dn: PKI, attributes: { objectClass: ['organizationalUnit'], ou: ['pki'] } },
      {
        dn: `cn=Root CA,${PKI}`,
        attributes: { objectClass: ['cRLDistributionPoint'], cn: ['Root CA'] },
      },
      {
        // RFC 4523's auxiliary class on a structural one: a CA entry as directories hold it.
        dn: `cn=Issuing CA,${PKI}`,
        attributes: { objectClass: ['applicationProcess', 'pkiCA'], cn: ['Issuing CA'] },
      },
      {
        dn: `cn=Issuing CDP,${PKI}`,
        attributes: { objectClass: ['cRLDistributionPoint'], cn: ['Issuing CDP'] },
      },
      {
        dn: `cn=Empty CDP,${PKI}`,
        attributes: { objectClass: ['cRLDistributionPoint'], cn: ['Empty CDP'] },
      },
      {
        dn: `cn=Elsewhere,${PKI}`,
        attributes: {
          objectClass: ['referral', 'extensibleObject'],
          cn: ['Elsewhere'],
          ref: [`ldap://127.0.0.1:${referred.port}/cn=Issuing%20CA,${PKI}`],
        },
      },
    ],
  });
  server = `ldap://127.0.0.1:${slapd.port}`;
  secureServer = slapd.ldapsUrl('').replace(/\/$/, '');
  root = await createTestCa(dir, 'LDAP Root', 'ec-p256');
  // The intermediate's CRL is the root's, published as an authority revocation list.
  issuing = await root.issueIntermediate('LDAP Issuing CA', 'ec-p256', {
    crlUrl: ldapUrl(server, `cn=Root CA,${PKI}`, '?authorityRevocationList;binary'),
  });
});

after(async () => {
  await Promise.all([slapd?.stop(), http?.stop(), referred?.close(), hanging?.close()]);
  await rm(dir, { recursive: true, force: true });
});

describe('the CRL dispatcher', () => {
  it('fetchCrl refuses other schemes by name, and fetches http:// as before', async () => {
    for (const [url, message] of [
      [
        'https://crl.example.net/ca.crl',
        /https: is not fetched: CRLs come over http, ldap or ldaps/,
      ],
      ['ftp://crl.example.net/ca.crl', /ftp: is not fetched/],
      ['/ca.crl', /a URL without scheme is not fetched/],
    ] as const)
      await assert.rejects(fetchCrl(url, { timeoutMs: 500 }), message);
    http.set('/root.crl', crlDer((await root.crl()).pem));
    const body = await fetchCrl(http.url('/root.crl'), { timeoutMs: 3000 });
    assert.equal(body[0], 0x30);
  });
});

describe('CRLs from a real slapd', () => {
  let good: TestLeaf;
  let revoked: TestLeaf;
  let byDefault: TestLeaf;
  let plain: TestLeaf;
  let secure: TestLeaf;
  let adStyle: TestLeaf;
  const issuingUrl = (query = '?certificateRevocationList;binary') =>
    ldapUrl(server, `cn=Issuing CA,${PKI}`, query);

  before(async () => {
    [good, revoked, byDefault, plain, secure, adStyle] = await Promise.all([
      leafAt('good', issuingUrl()),
      leafAt('revoked', issuingUrl()),
      leafAt('default-attribute', issuingUrl('')),
      leafAt('plain-attribute', issuingUrl('?certificateRevocationList')),
      leafAt(
        'secure',
        ldapUrl(secureServer, `cn=Issuing CA,${PKI}`, '?certificateRevocationList;binary'),
      ),
      leafAt(
        'ad-style',
        ldapUrl(
          server,
          `cn=Issuing CDP,${PKI}`,
          '?certificateRevocationList?base?objectClass=cRLDistributionPoint',
        ),
      ),
    ]);
    await issuing.revoke(revoked.certPath, 'keyCompromise');
    const issuingCrl = crlDer((await issuing.crl()).pem);
    await setAttribute(`cn=Issuing CA,${PKI}`, 'certificateRevocationList;binary', [issuingCrl]);
    await setAttribute(`cn=Issuing CDP,${PKI}`, 'certificateRevocationList;binary', [issuingCrl]);
    await setAttribute(`cn=Root CA,${PKI}`, 'authorityRevocationList;binary', [
      crlDer((await root.crl()).pem),
    ]);
  });

  it('good: trusted by the CRL read over LDAP, for the leaf and for its CA', async () => {
    const v = await check(good);
    assert.equal(v.trusted, true, v.reason);
    assert.equal(v.notes?.length, 2, String(v.notes));
    assert.ok(
      v.notes?.every((n) => /not revoked \(crl\)/.test(n)),
      String(v.notes),
    );
  });

  it('revoked: not trusted, with date and reason, not temporarily', async () => {
    const v = await check(revoked);
    assert.equal(v.trusted, false);
    assert.match(v.reason ?? '', /CN=revoked.*revoked on \d{4}-.*\(keyCompromise\) per CRL/);
    assert.equal(v.temporary, undefined);
  });

  it('the attribute as the URL names it: default, without ;binary, and Active Directory style', async () => {
    for (const leaf of [byDefault, plain, adStyle]) {
      const v = await check(leaf);
      assert.equal(v.trusted, true, `${leaf.subject}: ${v.reason}`);
    }
  });

  it('ldaps:// with the directory certificate trusted', async () => {
    const v = await check(secure);
    assert.equal(v.trusted, true, v.reason);
  });

  it('the same bytes as the CRL stored', async () => {
    const stored = crlDer((await issuing.crl()).pem);
    await setAttribute(`cn=Empty CDP,${PKI}`, 'certificateRevocationList;binary', [stored]);
    try {
      const fetched = await fetchLdapCrl(ldapUrl(server, `cn=Empty CDP,${PKI}`));
      assert.ok(fetched.equals(stored));
    } finally {
      await setAttribute(`cn=Empty CDP,${PKI}`, 'certificateRevocationList;binary', []);
    }
  });
});

describe('LDAP distribution points that fail', () => {
  /** Checks a fresh leaf pointing at `url`; hard-fail unless told otherwise. */
  async function unavailable(url: string, opts?: Options) {
    const leaf = await leafAt('failing', url);
    const v = await check(leaf, opts);
    assert.equal(v.trusted, false, `trusted: ${url}`);
    assert.match(v.reason ?? '', /CN=failing.*unavailable: crl /);
    assert.equal(v.temporary, true);
    return v.reason ?? '';
  }

  it('an entry that does not exist: unavailable, temporary under hard-fail', async () => {
    const reason = await unavailable(ldapUrl(server, `cn=Nobody,${PKI}`));
    assert.match(reason, /no such object \(result code 32\)/);
  });

  it('an entry without the attribute: unavailable, naming the attribute', async () => {
    const reason = await unavailable(ldapUrl(server, `cn=Empty CDP,${PKI}`));
    assert.match(
      reason,
      /entry "cn=Empty CDP,ou=pki,dc=example,dc=net" holds no certificateRevocationList/,
    );
  });

  it('an entry of another objectClass than the URL asks for: unavailable', async () => {
    const url = ldapUrl(server, `cn=Issuing CDP,${PKI}`, '??base?(objectClass=pkiCA)');
    assert.match(await unavailable(url), /is not of objectClass pkiCA/);
  });

  it('a value that is not a CRL: unavailable, soft-fail still trusts', async () => {
    // slapd checks the syntax of what it stores; other directories (and hostile ones) do not.
    const garbage = await fakeLdapServer([
      {
        dn: `cn=Issuing CA,${PKI}`,
        attributes: { 'certificateRevocationList;binary': [Buffer.from('not a CRL, not DER')] },
      },
    ]);
    try {
      const url = ldapUrl(`ldap://127.0.0.1:${garbage.port}`, `cn=Issuing CA,${PKI}`);
      assert.match(await unavailable(url), /crl ldap:\S+: not a usable CRL \(18 bytes\): DER/);
      const soft = await check(await leafAt('failing-soft', url), { policy: 'soft-fail' });
      assert.equal(soft.trusted, true, soft.reason);
      assert.ok(
        soft.notes?.some((n) => /unavailable/.test(n)),
        String(soft.notes),
      );
    } finally {
      await garbage.close();
    }
  });

  it('a stored CRL whose signature was tampered with: unavailable', async () => {
    const crl = Buffer.from(crlDer((await issuing.crl()).pem));
    crl[crl.length - 5]! ^= 0x01; // inside the signature: slapd's syntax check still passes
    const dn = `cn=Empty CDP,${PKI}`;
    await setAttribute(dn, 'certificateRevocationList;binary', [crl]);
    try {
      assert.match(await unavailable(ldapUrl(server, dn)), /CRL signature does not verify/);
    } finally {
      await setAttribute(dn, 'certificateRevocationList;binary', []);
    }
  });

  it('a CRL signed by another CA: unavailable, the signature named', async () => {
    const other = await createTestCa(dir, 'LDAP Issuing CA', 'ec-p256'); // same name, other key
    const dn = `cn=Empty CDP,${PKI}`;
    await setAttribute(dn, 'certificateRevocationList;binary', [crlDer((await other.crl()).pem)]);
    try {
      assert.match(await unavailable(ldapUrl(server, dn)), /CRL signature does not verify/);
    } finally {
      await setAttribute(dn, 'certificateRevocationList;binary', []);
    }
  });

  it('a referral is not followed', async () => {
    const reason = await unavailable(ldapUrl(server, `cn=Elsewhere,${PKI}`));
    assert.match(reason, /referral, which is not followed/);
    assert.equal(referred.accepted, 0);
  });

  it('a server that is down: unavailable', async () => {
    const closed = `ldap://127.0.0.1:${await freePort()}`;
    assert.match(await unavailable(ldapUrl(closed, `cn=Issuing CA,${PKI}`)), /ECONNREFUSED/);
  });

  it('a server that accepts and never answers: unavailable within the timeout', async () => {
    const url = ldapUrl(`ldap://127.0.0.1:${hanging.port}`, `cn=Issuing CA,${PKI}`);
    const leaf = await leafAt('failing', url);
    const started = performance.now();
    const v = await check(leaf, { timeoutMs: 400 });
    const ms = performance.now() - started;
    assert.equal(v.temporary, true);
    assert.match(v.reason ?? '', /unavailable: crl .*no answer within 400 ms/);
    assert.ok(ms >= 350 && ms < 400 + 1500, `${ms} ms`);
  });

  it('an answer over the byte cap is cut off', async () => {
    const reason = await unavailable(ldapUrl(server, `cn=Issuing CA,${PKI}`), { maxBytes: 256 });
    assert.match(reason, /the answer exceeds 256 bytes/);
  });

  it('URLs with another scope, a filter or extensions are refused, the directory not asked', async () => {
    const cases: [string, RegExp][] = [
      ['?certificateRevocationList;binary?sub', /scope must be base/],
      ['?certificateRevocationList;binary?base?(cn=*)', /filter "\(cn=\*\)" is not used/],
      ['?userCertificate;binary', /holds no CRL/],
      ['????!bindname=cn%3Dmanager', /credentials in a URL are never used/],
    ];
    const refusing = await hangingServer();
    try {
      for (const [query, message] of cases) {
        const url = ldapUrl(`ldap://127.0.0.1:${refusing.port}`, `cn=Issuing CA,${PKI}`, query);
        assert.match(await unavailable(url), message);
      }
      assert.equal(refusing.accepted, 0);
    } finally {
      await refusing.close();
    }
  });
});

describe('large answers', () => {
  it('a CRL-sized value arrives whole; over the cap it is refused', async () => {
    // 20 MiB in one LDAP message: framed once, not copied per chunk.
    const value = Buffer.alloc(20 << 20, 0x5a);
    value.writeUInt32BE(0xdeadbeef, value.length - 4);
    const big = await fakeLdapServer([
      { dn: 'cn=big', attributes: { 'certificateRevocationList;binary': [value] } },
    ]);
    try {
      const url = `ldap://127.0.0.1:${big.port}/cn=big`;
      const fetched = await fetchLdapCrl(url, { timeoutMs: 10_000 });
      assert.ok(fetched.equals(value));
      await assert.rejects(
        fetchLdapCrl(url, { timeoutMs: 10_000, maxBytes: 1 << 20 }),
        (e: unknown) =>
          e instanceof LdapQueryError && /the answer exceeds 1048576 bytes/.test(e.message),
      );
    } finally {
      await big.close();
    }
  });
});
