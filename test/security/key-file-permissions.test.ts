// Secret files in DOMSEC_KEYS_DIR (private keys `.key.pem`, PKCS#12 `.p12`,
// their passphrase files `.pass`) that group or others may read are refused
// when the real `domsec-milter serve` starts: exit 1, one line naming the file
// and the fix, no key material. The identity loader's own tests
// (test/pki/keygen-identities.test.ts, test/pki/pkcs12.test.ts) check the
// same at the function level for 0644/0640; here every kind of file, more
// modes, a symlink, and the command an operator runs.
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certificatePem, type DomainPki, generateDomainPki, keyPem } from '../../src/pki/keygen.js';
import { type CliResult, runCli, startServe } from '../helpers/cli.js';
import { runToolOk } from '../helpers/openssl.js';
import { freePort } from '../helpers/ports.js';

const PASS = 'p12 passphrase 5Qz!';

let base: string;
let pki: DomainPki;
/** A PKCS#12 file of example.net's encryption pair, protected by PASS. */
let p12: string;
let n = 0;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'domsec-keyperm-'));
  pki = await generateDomainPki('example.net');
  await writeFile(join(base, 'enc.key.pem'), keyPem(pki.encryption.privateKey), { mode: 0o600 });
  await writeFile(join(base, 'enc.crt.pem'), certificatePem(pki.encryption.certificate));
  p12 = join(base, 'enc.p12');
  await runToolOk(
    'openssl',
    [
      'pkcs12',
      '-export',
      '-in',
      join(base, 'enc.crt.pem'),
      '-inkey',
      join(base, 'enc.key.pem'),
    ].concat(['-passout', 'env:DOMSEC_P12_PASS', '-out', p12]),
    { env: { DOMSEC_P12_PASS: PASS } },
  );
});

after(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

type Layout = Record<string, string | Buffer | { copyOf: string }>;

/** A fresh 0700 keys directory: PEM signing pair, p12 encryption pair with its .pass; all 0600. */
async function keysDir(): Promise<string> {
  const dir = join(base, `keys-${++n}`);
  await mkdir(dir, { mode: 0o700 });
  const files: Layout = {
    'example.net.sign.key.pem': keyPem(pki.signing.privateKey),
    'example.net.sign.crt.pem': certificatePem(pki.signing.certificate),
    'example.net.encrypt.p12': { copyOf: p12 },
    'example.net.encrypt.pass': `${PASS}\n`,
  };
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    if (typeof content === 'object' && 'copyOf' in content) await copyFile(content.copyOf, path);
    else await writeFile(path, content);
    await chmod(path, 0o600);
  }
  return dir;
}

async function serveOnce(dir: string): Promise<CliResult> {
  return runCli(['serve'], {
    DOMSEC_LOCAL_DOMAINS: 'example.net',
    DOMSEC_KEYS_DIR: dir,
    DOMSEC_LISTEN: `inet:127.0.0.1:${await freePort()}`,
    DOMSEC_HTTP_LISTEN: `127.0.0.1:${await freePort()}`,
  });
}

/** Fragments of every secret in the directory that must not be echoed. */
function secrets(): string[] {
  const pemLines = [pki.signing.privateKey, pki.encryption.privateKey].flatMap((k) =>
    keyPem(k)
      .split('\n')
      .filter((l) => l.length >= 40),
  );
  return [PASS, ...pemLines.map((l) => l.slice(0, 24))];
}

async function assertRefused(dir: string, file: string, mode: number): Promise<void> {
  const r = await serveOnce(dir);
  assert.equal(r.code, 1, `exit 1: ${r.stdout}${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.equal(
    lines[0],
    `domsec-milter: cannot start: ${join(dir, file)} grants group or others access (mode ${mode.toString(8)}): chmod 600 it`,
  );
  for (const s of secrets()) assert.ok(!(r.stdout + r.stderr).includes(s), 'no secret echoed');
}

describe('key-file permissions: domsec-milter serve refuses secret files others may read', () => {
  it('control: all secret files 0600 (or 0400): serve starts', async () => {
    const dir = await keysDir();
    await chmod(join(dir, 'example.net.sign.key.pem'), 0o400);
    const m = await startServe({ DOMSEC_LOCAL_DOMAINS: 'example.net', DOMSEC_KEYS_DIR: dir });
    assert.equal(await m.stop(), 0);
    assert.match(m.output(), /milter listening/);
  });

  for (const [file, modes] of [
    ['example.net.sign.key.pem', [0o640, 0o604, 0o644, 0o620, 0o602, 0o660, 0o777]],
    ['example.net.encrypt.p12', [0o640, 0o604, 0o644]],
    ['example.net.encrypt.pass', [0o640, 0o604, 0o644]],
  ] as const) {
    it(`${file.slice('example.net.'.length)} with group or other bits (${modes.map((m) => m.toString(8)).join(', ')}): refused in one line`, async () => {
      for (const mode of modes) {
        const dir = await keysDir();
        await chmod(join(dir, file), mode);
        await assertRefused(dir, file, mode);
      }
    });
  }

  it('a private key reached through a symlink: the target file mode counts', async () => {
    const dir = await keysDir();
    const loose = join(base, `loose-${n}.key.pem`);
    await writeFile(loose, keyPem(pki.signing.privateKey));
    await chmod(loose, 0o644);
    await rm(join(dir, 'example.net.sign.key.pem'));
    await symlink(loose, join(dir, 'example.net.sign.key.pem'));
    await assertRefused(dir, 'example.net.sign.key.pem', 0o644);
  });
});
