/**
 * `npm start` with nothing configured must be useful: local domains without
 * a key get a development identity under the default keys directory. Only
 * there: an administrator who set DOMSEC_KEYS_DIR gets an error instead.
 */

import { promises as fs } from 'node:fs';
import { resolve, sep } from 'node:path';
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
  if (mayCreate) await makeKeysDir(dir);
  let identities = await loadIdentities(dir, domains, options);
  const missing = domains.filter((d) => !identities.has(d));
  if (!mayCreate || missing.length === 0) return { identities, created: [] };
  for (const domain of missing) await writeDomainPki(dir, domain, await generateDomainPki(domain));
  identities = await loadIdentities(dir, domains, options);
  return { identities, created: missing };
}

/**
 * mkdir -p, with the real cause when it fails: Node's recursive mkdir says
 * ENOENT where a parent is on a read-only filesystem (EROFS), so the path is
 * created again one level at a time to learn why.
 */
async function makeKeysDir(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    return;
  } catch (err) {
    let cause = (err as Error).message;
    const parts = resolve(dir).split(sep);
    for (let i = 2; i <= parts.length; i++) {
      try {
        await fs.mkdir(parts.slice(0, i).join(sep), { mode: 0o700 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
        cause = (e as Error).message;
        break;
      }
    }
    throw new Error(`cannot create the development identity's directory ${dir}: ${cause}`, {
      cause: err,
    });
  }
}
