// LDAP URLs of CRL distribution points (RFC 4516): what is read, and what
// is refused because it asks for more than one CRL attribute of one entry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LdapCrlUrlError, parseLdapCrlUrl } from '../../src/pki/ldap-crl.js';

describe('LDAP CRL URLs', () => {
  it('server, entry and attribute of the URL forms CAs write', () => {
    const base = 'ldap://ldap.example.net:389/cn=Partner%20CA,o=Example';
    assert.deepEqual(parseLdapCrlUrl(`${base}?certificateRevocationList;binary`), {
      server: 'ldap://ldap.example.net:389',
      dn: 'cn=Partner CA,o=Example',
      attribute: 'certificateRevocationList',
      requested: 'certificateRevocationList;binary',
    });
    const accepted: [string, string, string?][] = [
      [base, 'certificateRevocationList;binary'],
      [`${base}?`, 'certificateRevocationList;binary'],
      [`${base}?certificateRevocationList`, 'certificateRevocationList'],
      [`${base}?authorityRevocationList`, 'authorityRevocationList'],
      [`${base}?AuthorityRevocationList;Binary`, 'AuthorityRevocationList;Binary'],
      [`${base}?certificateRevocationList%3Bbinary?base`, 'certificateRevocationList;binary'],
      [`${base}?certificateRevocationList?BASE?(objectClass=*)`, 'certificateRevocationList'],
      [`${base}??base?(objectclass=%2A)`, 'certificateRevocationList;binary'],
      // What Active Directory Certificate Services writes (parentheses and all left out).
      [
        `${base}?certificateRevocationList?base?objectClass=cRLDistributionPoint`,
        'certificateRevocationList',
        'cRLDistributionPoint',
      ],
      [
        `${base}?certificateRevocationList??(objectClass=pkiCA)`,
        'certificateRevocationList',
        'pkiCA',
      ],
    ];
    for (const [url, requested, objectClass] of accepted) {
      const where = parseLdapCrlUrl(url);
      assert.equal(where.requested, requested, url);
      assert.equal(where.dn, 'cn=Partner CA,o=Example', url);
      assert.equal(where.objectClass, objectClass, url);
    }
    assert.equal(parseLdapCrlUrl('ldaps://[::1]/cn=x').server, 'ldaps://[::1]:636');
    assert.equal(parseLdapCrlUrl('ldap://h/cn=a%2Cb,o=x').dn, 'cn=a,b,o=x');
  });

  it('refuses, saying why, every URL that asks for more than one attribute of one entry', () => {
    const base = 'ldap://ldap.example.net/cn=CA,o=Example';
    const refused: [string, RegExp][] = [
      ['ldap:///cn=CA,o=Example?certificateRevocationList', /a host is required/],
      ['ldap://user:pw@ldap.example.net/cn=CA', /credentials/],
      ['http://ldap.example.net/cn=CA', /scheme must be ldap or ldaps/],
      ['ldap://ldap.example.net', /no DN/],
      [`${base}?userCertificate;binary`, /"userCertificate;binary" holds no CRL/],
      [`${base}?deltaRevocationList;binary`, /holds no CRL/],
      [`${base}?certificateRevocationList,cACertificate`, /one attribute only/],
      [`${base}?certificateRevocationList?sub`, /scope must be base .*"sub"/],
      [`${base}?certificateRevocationList?one`, /scope must be base/],
      [`${base}?certificateRevocationList?base?(cn=*)`, /filter "\(cn=\*\)" is not used/],
      [`${base}??base?(|(objectClass=*)(cn=x))`, /filter .* is not used/],
      [`${base}??base?(objectClass=*`, /filter .* is not used/],
      [`${base}??base?(objectClass=a*b)`, /filter .* is not used/],
      [`${base}????e-x=1`, /extensions are not supported/],
      [`${base}????!bindname=cn=admin`, /credentials in a URL are never used/],
      [`${base}????x-bindpw=secret`, /credentials in a URL are never used/],
      [`${base}?????`, /too many "\?" parts/],
      [`${base}#frag`, /fragment/],
      ['ldap://ldap.example.net/cn=%E0%A4%A', /DN is not correctly %-encoded/],
      ['ldap://ldap.example.net/cn=a%0Ab', /control characters/],
    ];
    for (const [url, message] of refused) {
      assert.throws(
        () => parseLdapCrlUrl(url),
        (e: unknown) => {
          assert.ok(e instanceof LdapCrlUrlError, url);
          assert.match(e.message, message, url);
          assert.ok(e.message.includes(JSON.stringify(url)), url);
          return true;
        },
      );
    }
  });
});
