/**
 * `npm start` with nothing configured must be useful: local domains without
 * a key get a development identity under the default keys directory. Only
 * there: an administrator who set DOMSEC_KEYS_DIR gets an error instead.
 */

import { promises as fs } from 'node:fs';
import { type DomainIdentity, type LoadIdentitiesOptions, loadIdentities } from './identities.js';
import { generateDomainPki } from './keygen.js';
import { writeDomainPki } from './keygen-files.js';

export interface IdentitySetup {
  readonly identities: Map<string, DomainIdentity>;
  /** Domains for which a development identity was just created. */
  readonly created: readonly string[];
}

export async function loadOrCreateIdentities(
  dir: string,
  domains: readonly string[],
  mayCreate: boolean,
  options: LoadIdentitiesOptions = {},
): Promise<IdentitySetup> {
  if (mayCreate) await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  let identities = await loadIdentities(dir, domains, options);
  const missing = domains.filter((d) => !identities.has(d));
  if (!mayCreate || missing.length === 0) return { identities, created: [] };
  for (const domain of missing) await writeDomainPki(dir, domain, await generateDomainPki(domain));
  identities = await loadIdentities(dir, domains, options);
  return { identities, created: missing };
}
