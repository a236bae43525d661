/**
 * Macro store. The MTA sends a MACRO packet tagged with the command it
 * precedes; each tag keeps its own map so a later stage never wipes an
 * earlier one (a bug other implementations have), and a new message clears
 * only the per-message stages.
 */

import { Cmd } from './constants.js';

/** Most specific first: a lookup prefers the latest stage that set the name. */
const LOOKUP_ORDER = [
  Cmd.BODYEOB,
  Cmd.EOH,
  Cmd.BODY,
  Cmd.HEADER,
  Cmd.DATA,
  Cmd.RCPT,
  Cmd.MAIL,
  Cmd.UNKNOWN,
  Cmd.HELO,
  Cmd.CONNECT,
] as const;

const MESSAGE_STAGES = [Cmd.MAIL, Cmd.RCPT, Cmd.DATA, Cmd.HEADER, Cmd.EOH, Cmd.BODY, Cmd.BODYEOB];

/** `{auth_authen}` and `auth_authen` are the same macro; we store bare names. */
export function bareMacroName(name: string): string {
  return name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1) : name;
}

export class MacroStore {
  private readonly byStage = new Map<number, Map<string, string>>();

  /** Stores the macros sent before command `stage`, replacing that stage's earlier set. */
  set(stage: number, pairs: ReadonlyArray<readonly [string, string]>): void {
    // MAIL starts a message: Sendmail may send it without an ABORT after the previous one.
    if (stage === Cmd.MAIL) this.clearMessage();
    const map = new Map<string, string>();
    for (const [name, value] of pairs) map.set(bareMacroName(name), value);
    this.byStage.set(stage, map);
  }

  get(name: string): string | undefined {
    const bare = bareMacroName(name);
    for (const stage of LOOKUP_ORDER) {
      const value = this.byStage.get(stage)?.get(bare);
      if (value !== undefined) return value;
    }
    return undefined;
  }

  all(): Map<string, string> {
    const out = new Map<string, string>();
    for (let i = LOOKUP_ORDER.length - 1; i >= 0; i--) {
      for (const [k, v] of this.byStage.get(LOOKUP_ORDER[i]!) ?? []) out.set(k, v);
    }
    return out;
  }

  clearMessage(): void {
    for (const stage of MESSAGE_STAGES) this.byStage.delete(stage);
  }

  clear(): void {
    this.byStage.clear();
  }
}
