#!/usr/bin/env -S node --single-threaded-gc --initial-heap-size=96
/**
 * Command line entry: `domsec-milter serve | check-config | keygen | transform | help`.
 * Only this file (with config.ts) touches process.env and process.exit.
 */

import { parseArgs } from 'node:util';
import { certsCommand } from './commands/certs.js';
import { keygenCommand } from './commands/keygen.js';
import { readStdin, transformCommand } from './commands/transform.js';
import { UsageError } from './commands/usage.js';
import { ConfigError, describeConfig, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { loadIdentities } from './pki/identities.js';
import { startService } from './serve.js';

const USAGE = `usage: domsec-milter <command>

commands:
  serve [--dev]  run the milter and its HTTP endpoint until SIGTERM; every local domain
                 needs its key, except with --dev (as npm start runs it), which creates
                 a development identity under ./.domsec/keys when DOMSEC_KEYS_DIR is unset
  check-config   validate the environment and print the effective configuration
  keygen --domain D --out DIR [--algo rsa-2048|rsa-3072|ec-p256|ed25519]
                 [--crl-url URL] [--ocsp-url URL]
                 a domain CA plus domain signing and encryption certificates (dev and test)
  transform --direction outbound|inbound [--from ADDR] [--to ADDR ...]
                 the milter's transform on one message: stdin to stdout, report (JSON) on stderr
  certs list [--json]            our identities, partner directory, cached partner answers
  certs lookup DOMAIN [--json]   ask every partner source now (past the cache), validate the result;
                                 exit 0 found, 2 not found, 75 a source failed temporarily
  certs import FILE [--domain D] a partner certificate into the shared cache (needs DOMSEC_REDIS_URL)
  certs purge DOMAIN | --all     forget cached partner answers (and, with --all, revocation answers)
  help           this text
`;

function fail(message: string): never {
  process.stderr.write(`domsec-milter: ${message}\n`);
  process.exit(1);
}

function configOrExit() {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { dev: { type: 'boolean' } }, strict: true });
  const config = configOrExit();
  const log = createLogger(config.logLevel);
  // Handlers first: a SIGTERM while starting (keys being generated, sockets
  // opening) must still end in a clean drain and exit 0, not a killed process.
  let requested: string | undefined;
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  const stop = (signal: string) => {
    if (requested) return;
    requested = signal;
    log.info({ signal }, 'shutting down');
    if (!service) return; // started below, then stopped at once
    service.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: String(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    service = await startService(config, log, { developmentIdentity: values.dev === true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Node's own errors already start with their code ("EACCES: permission denied, ...").
    const code = e.code && !e.message.startsWith(e.code) ? `${e.code} ` : '';
    fail(`cannot start: ${code}${e.message}`);
  }
  if (requested) {
    const signal = requested;
    requested = undefined;
    stop(signal);
  }
}

/** Validates the variables, then the keys as `serve` would load them (never creating any). */
async function checkConfig(): Promise<void> {
  const config = configOrExit();
  process.stdout.write(`${describeConfig(process.env).join('\n')}\n`);
  let identities: Awaited<ReturnType<typeof loadIdentities>>;
  try {
    identities = await loadIdentities(config.keysDir, config.localDomains, {
      passphrase: config.keysPassphrase,
    });
  } catch (err) {
    const missing = (err as Error).message.endsWith('ENOENT');
    if (missing && !config.keysDirExplicit) {
      process.stdout.write(
        '# no keys: serve refuses to start; `serve --dev` creates a development identity\n',
      );
      return;
    }
    fail(err instanceof Error ? err.message : String(err));
  }
  for (const domain of config.localDomains) {
    const id = identities.get(domain);
    process.stdout.write(
      id ? `# ${domain}: ${id.keys.length} key(s) loaded\n` : `# ${domain}: no key\n`,
    );
  }
}

async function main(argv: string[]): Promise<void> {
  const [command = 'help', ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'check-config':
      return await checkConfig();
    case 'transform': {
      const code = await transformCommand(rest, configOrExit(), {
        stdin: readStdin,
        stdout: (b) => process.stdout.write(b),
        stderr: (t) => process.stderr.write(t),
      });
      process.exitCode = code;
      return;
    }
    case 'certs': {
      const code = await certsCommand(rest, configOrExit(), {
        out: (line) => process.stdout.write(`${line}\n`),
        warn: (line) => process.stderr.write(`domsec-milter: ${line}\n`),
      });
      process.exitCode = code;
      return;
    }
    case 'keygen':
      return keygenCommand(rest, (line) => process.stdout.write(`${line}\n`));
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(USAGE);
      fail(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    fail((err as Error).message);
  }
  fail(err instanceof Error ? err.message : String(err));
});
