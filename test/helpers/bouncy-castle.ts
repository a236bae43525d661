/**
 * Bouncy Castle (Debian's libbcprov-java, libbcpkix-java) as an S/MIME peer:
 * test/interop/bc/BcEncrypt.java, compiled once with javac into a cache that
 * later runs reuse (keyed by the source and the jars it was built against),
 * then run with java. Anything missing fails loudly: an interop test must
 * never silently turn into no test.
 */

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
} from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Compiled to dist/test/helpers/: three levels up is the repository.
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SOURCE = join(REPO, 'test/interop/bc/BcEncrypt.java');
const DEFAULT_CACHE = join(REPO, 'node_modules/.cache/domsec-bouncy-castle');
/** bcpkix's CMS needs bcutil's ASN.1 modules (Debian splits them out since 1.69). */
const JARS = ['bcprov', 'bcpkix', 'bcutil'].map((j) => `/usr/share/java/${j}.jar`);
const JAVA = '/usr/bin/java';
const JAVAC = '/usr/bin/javac';
const INSTALL = 'install libbcprov-java libbcpkix-java and openjdk-17-jdk-headless (see .ci/run)';

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: 120_000, env: { ...process.env, LC_ALL: 'C' } },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

export type BcCipher = 'cbc' | 'gcm';

export interface BouncyCastle {
  /** The provider's version string, e.g. "1.72". */
  readonly version: string;
  /**
   * `content` encrypted to the EC certificate in `certPath` (PEM) by ECDH,
   * the recipient named by its subjectKeyIdentifier: EnvelopedData with
   * AES-128-CBC (`cbc`) or AuthEnvelopedData with AES-256-GCM (`gcm`), the
   * ContentInfo as Bouncy Castle encodes it (BER).
   */
  encrypt(cipher: BcCipher, certPath: string, content: Buffer): Promise<Buffer>;
}

/** The compiled BcEncrypt, compiling it on first use. DOMSEC_BC_CACHE moves the cache. */
async function compiled(): Promise<string> {
  for (const f of [JAVA, JAVAC, ...JARS]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: ${INSTALL}`);
  }
  const key = createHash('sha256').update(readFileSync(SOURCE));
  for (const jar of JARS) key.update(`\0${realpathSync(jar)}`); // bcprov-1.72.jar...
  const cache = process.env['DOMSEC_BC_CACHE'] ?? DEFAULT_CACHE;
  const dir = join(cache, key.digest('hex').slice(0, 16));
  if (!existsSync(join(dir, 'BcEncrypt.class'))) {
    mkdirSync(cache, { recursive: true });
    // Compile beside the final place and rename: a concurrent run sees all or nothing.
    const work = mkdtempSync(join(cache, 'build-'));
    try {
      await run(JAVAC, ['-d', work, '-cp', JARS.join(':'), SOURCE]);
      if (!existsSync(dir)) renameSync(work, dir);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  return [...JARS, dir].join(':');
}

export async function bouncyCastle(scratch: string): Promise<BouncyCastle> {
  const classpath = await compiled();
  const version = (await run(JAVA, ['-cp', classpath, 'BcEncrypt', '--version'])).trim();
  let n = 0;
  return {
    version,
    async encrypt(cipher, certPath, content) {
      const base = join(scratch, `bc-${process.pid}-${n++}`);
      const [input, output] = [`${base}.in`, `${base}.p7m`];
      await writeFile(input, content);
      await run(JAVA, ['-cp', classpath, 'BcEncrypt', cipher, certPath, input, output]);
      return readFile(output);
    },
  };
}
