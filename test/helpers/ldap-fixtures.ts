/** Directory entries, values and a note-recording source for the LDAP partner-certificate tests. */

import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertificateInfo } from '../../src/cms/certificate.js';
import { context, int, oid, seq, set } from '../../src/cms/der.js';
import { OID } from '../../src/cms/oids.js';
import {
  LdapCertificateSource,
  type LdapNote,
  type LdapSourceOptions,
} from '../../src/pki/ldap-source.js';
import { runToolOk, withTempDir } from './openssl.js';
import type { LdifEntry } from './slapd.js';

/** The RFC 3183 address a partner's domain encryption certificate is published under. */
export const dca = (domain: string) => `domain-confidentiality-authority@${domain}`;

export function person(
  cn: string,
  base: string,
  mail: string,
  certs: Record<string, (string | Buffer)[]> = {},
): LdifEntry {
  return {
    dn: `cn=${cn},${base}`,
    attributes: { objectClass: ['inetOrgPerson'], cn: [cn], sn: [cn], mail: [mail], ...certs },
  };
}

export const ou = (name: string, suffix: string): LdifEntry => ({
  dn: `ou=${name},${suffix}`,
  attributes: { objectClass: ['organizationalUnit'], ou: [name] },
});

/** A certs-only SignedData as OpenSSL writes it (`crl2pkcs7 -nocrl`). */
export function opensslCertsOnly(certs: readonly CertificateInfo[]): Promise<Buffer> {
  return withTempDir(async (dir) => {
    await writeFile(join(dir, 'in.pem'), certs.map((c) => c.x509.toString()).join(''));
    await runToolOk('openssl', [
      'crl2pkcs7',
      '-nocrl',
      '-certfile',
      join(dir, 'in.pem'),
      '-outform',
      'DER',
      '-out',
      join(dir, 'out.p7c'),
    ]);
    return readFile(join(dir, 'out.p7c'));
  });
}

/** A certs-only SignedData whose certificate set holds exactly `elements`. */
export function certsOnly(elements: readonly Buffer[]): Buffer {
  const signedData = seq(int(1), set(), seq(oid(OID.data)), context(0, ...elements), set());
  return seq(oid(OID.signedData), context(0, signedData));
}

/** Random bytes that cannot pass for the start of an LDAP message (a BER SEQUENCE, 0x30). */
export function nonsense(length: number): Buffer {
  const b = randomBytes(length);
  if (b[0] === 0x30) b[0] = 0x31;
  return b;
}

/** An LdapCertificateSource whose notes are kept for the test to read. */
export function recordingSource(
  directories: ConstructorParameters<typeof LdapCertificateSource>[0],
  opts: LdapSourceOptions = {},
): { s: LdapCertificateSource; notes: LdapNote[] } {
  const notes: LdapNote[] = [];
  const s = new LdapCertificateSource(directories, { ...opts, onNote: (n) => notes.push(n) });
  return { s, notes };
}
