import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LdapCertificateSource, searchableDomain } from '../../src/pki/ldap-source.js';
import { LdapConfigError, parseLdapUrl, splitLdapUrls } from '../../src/pki/ldap-url.js';

describe('LDAP URLs and domains', () => {
  it('an LDAP URL gives server, base DN and default ports', () => {
    assert.deepEqual(parseLdapUrl('ldap://127.0.0.1:3890/ou=partners,dc=example,dc=net'), {
      url: 'ldap://127.0.0.1:3890/ou=partners,dc=example,dc=net',
      server: 'ldap://127.0.0.1:3890',
      baseDn: 'ou=partners,dc=example,dc=net',
      secure: false,
    });
    const s = parseLdapUrl('ldaps://ldap.example.org/o=Example%20Org,c=DE');
    assert.equal(s.server, 'ldaps://ldap.example.org:636');
    assert.equal(s.baseDn, 'o=Example Org,c=DE');
    assert.equal(s.secure, true);
    assert.equal(parseLdapUrl('ldap://ldap.example.org').server, 'ldap://ldap.example.org:389');
    assert.equal(parseLdapUrl('ldap://ldap.example.org').baseDn, '');
    assert.equal(parseLdapUrl('ldap://[::1]:3890/dc=x').server, 'ldap://[::1]:3890');
  });

  it('refuses URLs it could only half obey, with a clear error', () => {
    const bad: [string, RegExp][] = [
      ['not a url', /not a URL/],
      ['http://example.org/dc=x', /scheme must be ldap or ldaps/],
      ['ldap:///dc=example,dc=net', /host is required/],
      ['ldap://user:secret@example.org/dc=x', /credentials/],
      ['ldap://example.org/dc=x?userCertificate?sub', /chosen by the lookup/],
      ['ldap://example.org/dc=x??sub?(mail=*)', /chosen by the lookup/],
      ['ldap://example.org/dc=x#frag', /chosen by the lookup/],
      ['ldap://example.org/dc=%E0%A4%A', /%-encoded/],
      ['ldap://example.org/dc=a%00b', /control characters/],
    ];
    for (const [url, message] of bad) {
      assert.throws(
        () => parseLdapUrl(url),
        (e: unknown) => {
          assert.ok(e instanceof LdapConfigError, url);
          assert.match(e.message, message, url);
          return true;
        },
      );
    }
  });

  it('a list of URLs is split on white space, commas staying inside the DNs', () => {
    assert.deepEqual(
      splitLdapUrls(' ldap://a:1/ou=p,dc=a,dc=net\n\tldaps://b/dc=b,dc=org  ldap://c '),
      ['ldap://a:1/ou=p,dc=a,dc=net', 'ldaps://b/dc=b,dc=org', 'ldap://c'],
    );
    assert.deepEqual(splitLdapUrls('   '), []);
  });

  it('domain names become LDH names (IDNs as A-labels); anything else is refused', () => {
    const good: [string, string][] = [
      ['example.org', 'example.org'],
      ['Example.ORG', 'example.org'],
      ['a.b-c.example', 'a.b-c.example'],
      ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
      ['bücher.example', 'xn--bcher-kva.example'],
      ['BÜCHER.example', 'xn--bcher-kva.example'],
      ['localhost', 'localhost'],
    ];
    for (const [d, ldh] of good) assert.equal(searchableDomain(d), ldh, d);
    const bad = [
      '',
      'x)(mail=*',
      '*',
      'example.org)(mail=*',
      // WHATWG domainToASCII alone would turn these into the valid name "a".
      'a\\2a.example',
      'a/x.example',
      'a＼2a.example',
      'a\u0000b.example',
      '-a.example',
      'a-.example',
      'a..example',
      'example.org.',
      'ex ample.org',
      'a_b.example',
      `${'a'.repeat(64)}.example`,
      `${'a.'.repeat(127)}ab`,
    ];
    for (const d of bad) assert.equal(searchableDomain(d), undefined, JSON.stringify(d));
  });

  it('the constructor refuses incomplete credentials, bad limits and bad URLs', () => {
    const url = 'ldap://127.0.0.1:1/dc=x';
    assert.throws(
      () => new LdapCertificateSource([{ url, bindDn: 'cn=a,dc=x' }]),
      /bind DN and a password go together/,
    );
    assert.throws(() => new LdapCertificateSource([url], { timeoutMs: 0 }), /timeoutMs/);
    assert.throws(() => new LdapCertificateSource([url], { sizeLimit: 1.5 }), /sizeLimit/);
    assert.throws(() => new LdapCertificateSource(['ldap://x/?a']), LdapConfigError);
    assert.deepEqual(new LdapCertificateSource([url]).urls, [url]);
  });
});
