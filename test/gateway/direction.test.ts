import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type DirectionPolicy,
  domainOf,
  isTrustedClient,
  parseNetworks,
  recipientDirection,
} from '../../src/gateway/direction.js';

const policy: DirectionPolicy = {
  localDomains: new Set(['example.org']),
  trustedNetworks: parseNetworks(['127.0.0.0/8', '192.0.2.0/24', '::1/128', '2001:db8::/32']),
};
const inside = { address: '192.0.2.10', authenticatedAs: undefined };
const outside = { address: '198.51.100.7', authenticatedAs: undefined };
const roaming = { address: '203.0.113.5', authenticatedAs: 'alice' };

describe('direction', () => {
  test('domains of addresses', () => {
    assert.equal(domainOf('<Alice@Example.ORG>'), 'example.org');
    assert.equal(domainOf('<>'), undefined);
    assert.equal(domainOf('bob@example.net.'), 'example.net');
  });

  test('trusted: authenticated, or inside the networks (IPv4, IPv6, v4-mapped)', () => {
    assert.equal(isTrustedClient(policy, inside), true);
    assert.equal(isTrustedClient(policy, roaming), true);
    assert.equal(isTrustedClient(policy, outside), false);
    assert.equal(
      isTrustedClient(policy, { address: '::ffff:192.0.2.99', authenticatedAs: undefined }),
      true,
    );
    assert.equal(
      isTrustedClient(policy, { address: '2001:db8::25', authenticatedAs: undefined }),
      true,
    );
    assert.equal(
      isTrustedClient(policy, { address: '2001:db9::25', authenticatedAs: undefined }),
      false,
    );
    assert.equal(
      isTrustedClient(policy, { address: undefined, authenticatedAs: undefined }),
      false,
    );
  });

  test('outbound only for a trusted client with a local sender to a remote recipient', () => {
    assert.equal(
      recipientDirection(policy, inside, '<alice@example.org>', '<bob@example.net>'),
      'outbound',
    );
    assert.equal(
      recipientDirection(policy, roaming, '<alice@example.org>', '<bob@example.net>'),
      'outbound',
    );
    assert.equal(
      recipientDirection(policy, inside, '<alice@example.org>', '<carol@example.org>'),
      'pass',
    );
    assert.equal(
      recipientDirection(policy, inside, '<list@example.com>', '<bob@example.net>'),
      'pass',
    );
  });

  test('signing oracle: an outside client claiming a local sender is never outbound', () => {
    assert.equal(
      recipientDirection(policy, outside, '<alice@example.org>', '<bob@example.net>'),
      'pass',
    );
    assert.equal(
      recipientDirection(policy, outside, '<alice@example.org>', '<carol@example.org>'),
      'inbound',
    );
  });

  test('decryption oracle: mail from inside to a local mailbox is never inbound', () => {
    assert.equal(
      recipientDirection(policy, inside, '<mallory@example.net>', '<carol@example.org>'),
      'pass',
    );
    assert.equal(
      recipientDirection(policy, outside, '<bob@example.net>', '<carol@example.org>'),
      'inbound',
    );
  });
});
