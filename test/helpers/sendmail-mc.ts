/**
 * sendmail.mc for a private test Sendmail on loopback, and the
 * INPUT_MAIL_FILTER lines from deploy/sendmail/domsec-milter.mc so the tests
 * run the snippet we ship.
 */

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface SendmailMcOptions {
  cfDir: string;
  /** $j, the name in the greeting; must contain a dot. */
  hostname: string;
  smtpPort: number;
  /** Everything is relayed here: smtp to [127.0.0.1]:relayPort. */
  relayPort: number;
  queueDir: string;
  pidFile: string;
  statusFile: string;
  hostsFile: string;
  serviceSwitchFile: string;
  /** m4 lines with INPUT_MAIL_FILTER (and macro settings), if any. */
  milterMc?: string;
}

// Compiled to dist/test/helpers/: three levels up is the repository.
const DEPLOY_MC = fileURLToPath(
  new URL('../../../deploy/sendmail/domsec-milter.mc', import.meta.url),
);

/** deploy/sendmail/domsec-milter.mc with the filter pointed at 127.0.0.1:port. */
export function deployedMilterMc(port: number): string {
  const text = readFileSync(DEPLOY_MC, 'utf8');
  const socket = /S=inet:\d+@127\.0\.0\.1/;
  if (!socket.test(text)) throw new Error(`${DEPLOY_MC}: no S=inet:PORT@127.0.0.1 to point`);
  return text.replace(socket, `S=inet:${port}@127.0.0.1`);
}

// Values must be usable inside m4 quotes and cf lines: no quotes, commas or newlines.
function checked(value: string): string {
  if (!/^[\w ./@:+[\]-]+$/.test(value)) throw new Error(`unsafe value for sendmail.mc: ${value}`);
  return value;
}

export function sendmailMc(o: SendmailMcOptions): string {
  const def = (name: string, value: string): string =>
    `define(\`${name}', \`${checked(value)}')dnl`;
  return [
    'divert(-1)',
    'divert(0)dnl',
    `include(\`${checked(o.cfDir)}/m4/cf.m4')dnl`,
    "OSTYPE(`linux')dnl",
    def('confDOMAIN_NAME', o.hostname),
    def('QUEUE_DIR', o.queueDir),
    def('confPID_FILE', o.pidFile),
    def('STATUS_FILE', o.statusFile),
    // Root in CI; Sendmail otherwise switches to a user that may not own the dirs.
    def('confRUN_AS_USER', 'root'),
    def('confDONT_BLAME_SENDMAIL', 'GroupWritableDirPathSafe'),
    // No DNS is reachable: hosts from our own file only, no interface probing
    // (reverse look-ups of every address), no ident call-back, no canonification.
    def('confHOSTS_FILE', o.hostsFile),
    def('confSERVICE_SWITCH_FILE', o.serviceSwitchFile),
    def('confDONT_PROBE_INTERFACES', 'true'),
    def('confBIND_OPTS', '-DNSRCH -DEFNAMES'),
    def('confTO_IDENT', '0'),
    "define(`ALIAS_FILE', `')dnl",
    // Every recipient goes to the test sink.
    def('SMART_HOST', 'relay:[127.0.0.1]'),
    `define(\`RELAY_MAILER_ARGS', \`TCP $h ${o.relayPort}')dnl`,
    // Without it Sendmail also listens on 587, and two instances fight over it.
    "FEATURE(`no_default_msa')dnl",
    "FEATURE(`promiscuous_relay')dnl",
    "FEATURE(`accept_unresolvable_domains')dnl",
    "FEATURE(`nocanonify')dnl",
    `DAEMON_OPTIONS(\`Port=${o.smtpPort}, Addr=127.0.0.1, Name=MTA')dnl`,
    o.milterMc ?? 'dnl no milter',
    "MAILER(`local')dnl",
    "MAILER(`smtp')dnl",
    '',
  ].join('\n');
}
