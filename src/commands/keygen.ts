/** `domsec-milter keygen --domain D --out DIR [--algo A] [--crl-url U] [--ocsp-url U]` */

import { parseArgs } from 'node:util';
import { generateDomainPki, KEY_ALGORITHMS, type KeyAlgorithm } from '../pki/keygen.js';
import { writeDomainPki } from '../pki/keygen-files.js';
import { UsageError } from './usage.js';

export async function keygenCommand(args: string[], out: (line: string) => void): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      domain: { type: 'string' },
      out: { type: 'string' },
      algo: { type: 'string', default: 'rsa-2048' },
      'crl-url': { type: 'string' },
      'ocsp-url': { type: 'string' },
    },
    strict: true,
  });
  const domain = values.domain?.toLowerCase();
  if (!domain || !/^[a-z0-9.-]+\.[a-z]{2,}$/.test(domain))
    throw new UsageError('keygen needs --domain DOMAIN');
  if (!values.out) throw new UsageError('keygen needs --out DIR');
  const algo = values.algo as KeyAlgorithm;
  if (!KEY_ALGORITHMS.includes(algo))
    throw new UsageError(`--algo must be one of ${KEY_ALGORITHMS.join(', ')}`);
  const pki = await generateDomainPki(domain, {
    algo,
    ...(values['crl-url'] ? { crlUrl: values['crl-url'] } : {}),
    ...(values['ocsp-url'] ? { ocspUrl: values['ocsp-url'] } : {}),
  });
  const written = await writeDomainPki(values.out, domain, pki);
  for (const f of written.files) out(f);
  out(`partners trust ${written.caCertificate}`);
}
