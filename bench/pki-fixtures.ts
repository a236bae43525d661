/**
 * What the PKI benchmark looks things up in: 1000 partner certificates in a
 * PEM directory and in a real slapd, one of them as a DNS SMIMEA record in
 * dnsmasq, a real redis-server, and an openssl CA with `openssl ocsp`
 * answering for it and its CRLs served over HTTP. Everything on loopback,
 * in private temp dirs; `cleanup.run()` stops it all, whatever failed.
 */

import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CertificateInfo, loadCertificatesPem, pemBlocks } from '../src/cms/certificate.js';
import { DNS_TYPE } from '../src/pki/dns-wire.js';
import { certificatePem, generateKey, type Issuer, issueCertificate } from '../src/pki/keygen.js';
import { DOMAIN_ENCRYPTION_LOCAL_PART, smimeaOwnerName } from '../src/pki/smimea-record.js';
import {
  type DnsServerOptions,
  startDnsServer,
  type TestDnsServer,
} from '../test/helpers/dns-server.js';
import { type HttpFiles, startHttpFiles } from '../test/helpers/http-files.js';
import { dca, ou, person } from '../test/helpers/ldap-fixtures.js';
import { type OcspResponder, startOcspResponder } from '../test/helpers/ocsp-responder.js';
import { createTestCa, type TestCa } from '../test/helpers/pki.js';
import { freePort } from '../test/helpers/ports.js';
import { startRedis, type TestRedis } from '../test/helpers/redis.js';
import { type SlapdOptions, startSlapd, type TestSlapd } from '../test/helpers/slapd.js';

/** Stop steps run last-in first-out; a failing step is reported and the rest still run. */
export class Cleanup {
  private readonly steps: { readonly what: string; readonly step: () => unknown }[] = [];

  add(what: string, step: () => unknown): void {
    this.steps.push({ what, step });
  }

  async run(): Promise<void> {
    for (const { what, step } of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        process.stderr.write(`cleanup: ${what}: ${err instanceof Error ? err.message : err}\n`);
      }
    }
  }
}

export const PARTNER_COUNT = 1000;
export const ZONE = 'bench.test';
export const partnerDomain = (i: number) => `partner-${String(i).padStart(4, '0')}.${ZONE}`;
/** The partner every look-up asks for: in the middle of the directory, LDAP and DNS alike. */
export const LOOKED_UP = PARTNER_COUNT / 2;
export const LDAP_SUFFIX = 'dc=bench,dc=test';
export const LDAP_BASE = `ou=partners,${LDAP_SUFFIX}`;

export interface Revocation {
  readonly ca: TestCa;
  readonly issuer: CertificateInfo;
  /** Names only the OCSP responder. */
  readonly ocspLeaf: CertificateInfo;
  /** Names only the CRL distribution point `crlPath` on `http`. */
  readonly crlLeaf: CertificateInfo;
  readonly crlPath: string;
  /** The CA's CRLs: one revocation, and 10 000 revocations (the responder's index too). */
  readonly crls: { readonly entries: number; readonly der: Buffer }[];
  readonly http: HttpFiles;
  readonly responder: OcspResponder;
}

export interface PkiFixture {
  readonly dir: string;
  /** partners[i] names partnerDomain(i). */
  readonly partners: readonly CertificateInfo[];
  readonly partnerCa: CertificateInfo;
  /** PEM files, one certificate each. */
  readonly directoryPath: string;
  readonly redis: TestRedis;
  readonly slapd: TestSlapd;
  readonly dns: TestDnsServer;
  readonly revocation: Revocation;
}

async function partnerCertificates(): Promise<{ ca: Issuer; partners: CertificateInfo[] }> {
  const [caKey, partnerKey] = await Promise.all([generateKey('ec-p256'), generateKey('rsa-2048')]);
  const ca: Issuer = {
    certificate: await issueCertificate({
      commonName: 'Bench partner CA',
      publicKey: caKey.publicKey,
      selfKey: caKey.privateKey,
      ca: true,
      keyUsage: ['keyCertSign', 'cRLSign'],
    }),
    privateKey: caKey.privateKey,
  };
  // One RSA key for every partner: key generation would dominate the setup, and
  // nothing measured here depends on the keys being different.
  const partners: CertificateInfo[] = [];
  for (let i = 0; i < PARTNER_COUNT; i++) {
    const domain = partnerDomain(i);
    partners.push(
      await issueCertificate({
        commonName: `${domain} domain confidentiality`,
        organization: domain,
        publicKey: partnerKey.publicKey,
        issuer: ca,
        rfc822Names: [dca(domain)],
        dnsNames: [domain],
        keyUsage: ['keyEncipherment'],
        emailProtection: true,
      }),
    );
  }
  return { ca, partners };
}

const serialOf = (i: number) => (0x100000 + i).toString(16).toUpperCase();

/** `count` revoked entries as openssl's index.txt lines (serials that no real certificate has). */
export function revokedIndexLines(count: number, from = 0): string {
  const lines: string[] = [];
  for (let i = from; i < from + count; i++)
    lines.push(`R\t351231235959Z\t250101000000Z,keyCompromise\t${serialOf(i)}\tunknown\t/CN=x${i}`);
  return `${lines.join('\n')}\n`;
}

export async function crlDer(ca: TestCa): Promise<Buffer> {
  return pemBlocks((await ca.crl()).pem, 'X509 CRL')[0]!;
}

async function revocation(dir: string, cleanup: Cleanup): Promise<Revocation> {
  const http = await startHttpFiles();
  cleanup.add('HTTP server', () => http.stop());
  const ocspPort = await freePort();
  const ca = await createTestCa(dir, 'Bench Revocation CA');
  const crlPath = '/ca.crl';
  const [ocspLeaf, crlLeaf, responderCert] = await Promise.all([
    ca.issue({ commonName: 'ocsp-leaf', ocspUrl: `http://127.0.0.1:${ocspPort}/` }),
    ca.issue({ commonName: 'crl-leaf', crlUrl: http.url(crlPath) }),
    ca.issue({ commonName: 'Bench OCSP responder', ocspSigning: true, purpose: 'signing' }),
  ]);
  await appendFile(ca.indexPath, revokedIndexLines(1));
  const one = await crlDer(ca);
  await appendFile(ca.indexPath, revokedIndexLines(9_999, 1));
  const tenThousand = await crlDer(ca);
  const responder = await startOcspResponder({
    indexPath: ca.indexPath,
    caCertPath: ca.certPath,
    signerCertPath: responderCert.certPath,
    signerKeyPath: responderCert.keyPath,
    port: ocspPort,
    nextUpdateMinutes: 60,
  });
  cleanup.add('openssl ocsp', () => responder.stop());
  const load = (pem: string) => loadCertificatesPem(pem)[0]!;
  return {
    ca,
    issuer: load(ca.certPem),
    ocspLeaf: load(ocspLeaf.certPem),
    crlLeaf: load(crlLeaf.certPem),
    crlPath,
    crls: [
      { entries: 1, der: one },
      { entries: 10_000, der: tenThousand },
    ],
    http,
    responder,
  };
}

/** Builds everything; every server started is in `cleanup`, also when this throws. */
export async function startPkiFixture(
  cleanup: Cleanup,
  log: (s: string) => void,
): Promise<PkiFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'domsec-pki-bench-'));
  cleanup.add('temp dir', () => rm(dir, { recursive: true, force: true }));
  // Started side by side; on a failure the others are awaited before the error
  // goes up, so nothing still starting escapes the cleanup.
  const inFlight: Promise<unknown>[] = [];
  const started = <T>(what: string, start: Promise<T>, stop: (t: T) => unknown): Promise<T> => {
    const p = start.then((t) => {
      cleanup.add(what, () => stop(t));
      return t;
    });
    inFlight.push(p);
    return p;
  };
  try {
    const redis = started('redis-server', startRedis(), (r) => r.stop());
    const revocationParts = revocation(dir, cleanup);
    inFlight.push(revocationParts);
    const { ca, partners } = await partnerCertificates();
    log(`  ${PARTNER_COUNT} partner certificates issued`);
    const directoryPath = join(dir, 'partners');
    await mkdir(directoryPath);
    await Promise.all(
      partners.map((c, i) =>
        writeFile(
          join(directoryPath, `partner-${String(i).padStart(4, '0')}.pem`),
          certificatePem(c),
        ),
      ),
    );
    const slapd = started('slapd', startSlapd(slapdOptions(partners)), (s) => s.stop());
    const dns = started('dnsmasq', startDnsServer(dnsOptions(partners[LOOKED_UP]!)), (d) =>
      d.stop(),
    );
    const fixture: PkiFixture = {
      dir,
      partners,
      partnerCa: ca.certificate,
      directoryPath,
      redis: await redis,
      slapd: await slapd,
      dns: await dns,
      revocation: await revocationParts,
    };
    log('  redis-server, slapd, dnsmasq, openssl ocsp and the CRL server are up');
    return fixture;
  } catch (err) {
    await Promise.allSettled(inFlight);
    throw err;
  }
}

function slapdOptions(partners: readonly CertificateInfo[]): SlapdOptions {
  return {
    suffix: LDAP_SUFFIX,
    entries: [
      ou('partners', LDAP_SUFFIX),
      ...partners.map((c, i) =>
        person(`partner-${i}`, LDAP_BASE, dca(partnerDomain(i)), {
          'userCertificate;binary': [c.der],
        }),
      ),
    ],
  };
}

function dnsOptions(looked: CertificateInfo): DnsServerOptions {
  return {
    zone: ZONE,
    records: [
      {
        name: smimeaOwnerName(DOMAIN_ENCRYPTION_LOCAL_PART, partnerDomain(LOOKED_UP)),
        type: DNS_TYPE.SMIMEA,
        // usage 3 (DANE-EE), selector 0 (whole certificate), matching type 0 (exact)
        data: Buffer.concat([Buffer.from([3, 0, 0]), looked.der]),
      },
    ],
  };
}
