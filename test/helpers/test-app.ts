/**
 * A milter application for end-to-end tests, steered by the message itself:
 * the header `X-Test-Action` lists what to do at end of message, so one
 * running milter serves miltertest scripts and Postfix tests alike.
 *
 *   add-header            add `X-Test-Added: yes`
 *   insert-header         insert `X-Test-Inserted: first` at index 0
 *   change-subject        change the first Subject to `changed by milter`
 *   delete-header         delete the first `X-Delete-Me`
 *   echo-macros           add `X-Test-Macros` with i, j, {auth_authen}, {daemon_name}, client
 *   replace-body=N        replace the body with N bytes of numbered lines
 *   add-rcpt=ADDR         add a recipient;  del-rcpt=ADDR  delete one
 *   chgfrom=ADDR          change the envelope sender
 *   quarantine            hold the message
 *   reject | tempfail | discard   end with that decision
 * A recipient whose address contains `reject-me` gets 550 5.7.1 at RCPT.
 */

import {
  type Decision,
  Decisions,
  type EndOfMessage,
  type MilterApplication,
  replyCode,
} from '../../protocol/index.js';

/** Deterministic body of exactly `size` bytes of CRLF lines. */
export function numberedBody(size: number): Buffer {
  const out = Buffer.alloc(size);
  let off = 0;
  for (let n = 0; off < size; n++) {
    const line = `line ${String(n).padStart(8, '0')} of the replacement body, all 7-bit\r\n`;
    off += out.write(line, off, 'latin1');
  }
  if (size >= 2) out.write('\r\n', size - 2, 'latin1');
  return out;
}

async function perform(
  action: string,
  eom: EndOfMessage,
  macros: Map<string, string>,
): Promise<Decision | undefined> {
  const [verb, arg = ''] = action.split('=', 2) as [string, string?];
  switch (verb) {
    case 'add-header':
      return void (await eom.addHeader('X-Test-Added', 'yes'));
    case 'insert-header':
      return void (await eom.insertHeader(0, 'X-Test-Inserted', 'first'));
    case 'change-subject':
      return void (await eom.changeHeader('Subject', 1, 'changed by milter'));
    case 'delete-header':
      return void (await eom.deleteHeader('X-Delete-Me', 1));
    case 'echo-macros': {
      const names = ['i', 'j', 'auth_authen', 'daemon_name', 'client'];
      const value = names.map((n) => `${n}=${macros.get(n) ?? ''}`).join(' ');
      return void (await eom.addHeader('X-Test-Macros', value));
    }
    case 'replace-body':
      return void (await eom.replaceBody(numberedBody(Number(arg))));
    case 'add-rcpt':
      return void (await eom.addRecipient(arg));
    case 'del-rcpt':
      return void (await eom.deleteRecipient(arg));
    case 'chgfrom':
      return void (await eom.changeFrom(arg));
    case 'quarantine':
      return void (await eom.quarantine('test quarantine'));
    case 'reject':
      return replyCode(550, '5.7.1', 'rejected by test milter');
    case 'tempfail':
      return Decisions.tempfail;
    case 'discard':
      return Decisions.discard;
    default:
      throw new Error(`unknown test action ${action}`);
  }
}

export function testApplication(): MilterApplication {
  return {
    capabilities: {
      optionalActions: [
        'ADDHDRS',
        'CHGHDRS',
        'CHGBODY',
        'ADDRCPT',
        'DELRCPT',
        'CHGFROM',
        'QUARANTINE',
      ],
      // MAIL is not needed, but miltertest refuses to run a script against SMFIP_NOMAIL.
      events: ['connect', 'mail', 'rcpt', 'header'],
      noReply: ['connect', 'mail', 'header'],
      macros: { mail: ['auth_authen', 'i'], eom: ['i', 'j', 'daemon_name'] },
    },
    openConnection: () => {
      let client = '';
      return {
        connect: (info) => {
          client = info.address ?? info.hostname;
          return undefined;
        },
        transaction: (tx) => {
          const actions: string[] = [];
          return {
            rcpt: (address) =>
              address.includes('reject-me')
                ? replyCode(550, '5.7.1', 'recipient refused by test')
                : undefined,
            header: (name, value) => {
              if (name.toLowerCase() === 'x-test-action') {
                actions.push(
                  ...value
                    .toString()
                    .split(',')
                    .map((a) => a.trim())
                    .filter(Boolean),
                );
              }
              return undefined;
            },
            endOfMessage: async (eom) => {
              const macros = tx.macros();
              macros.set('client', client);
              let decision: Decision | undefined;
              for (const action of actions)
                decision = (await perform(action, eom, macros)) ?? decision;
              return decision ?? Decisions.accept;
            },
          };
        },
      };
    },
  };
}
