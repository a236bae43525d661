/**
 * Milter protocol version 6 constants, as defined by Sendmail's libmilter
 * (mfdef.h) and spoken by Postfix 3.x (milter8.c).
 */

/** The highest protocol version we speak. */
export const MILTER_VERSION = 6;
/** Versions below 2 have no option negotiation we could work with. */
export const MILTER_MIN_VERSION = 2;

/** Largest body chunk an MTA sends unless a bigger one was negotiated. */
export const MILTER_CHUNK_SIZE = 65535;

/** Commands sent by the MTA. */
export const Cmd = {
  ABORT: 0x41, // 'A'
  BODY: 0x42, // 'B'
  CONNECT: 0x43, // 'C'
  MACRO: 0x44, // 'D'
  BODYEOB: 0x45, // 'E'
  HELO: 0x48, // 'H'
  QUIT_NC: 0x4b, // 'K'
  HEADER: 0x4c, // 'L'
  MAIL: 0x4d, // 'M'
  EOH: 0x4e, // 'N'
  OPTNEG: 0x4f, // 'O'
  QUIT: 0x51, // 'Q'
  RCPT: 0x52, // 'R'
  DATA: 0x54, // 'T'
  UNKNOWN: 0x55, // 'U'
} as const;

/** Replies and end-of-message modifications sent by the filter. */
export const Rsp = {
  ADDRCPT: 0x2b, // '+'
  DELRCPT: 0x2d, // '-'
  ADDRCPT_PAR: 0x32, // '2'
  SHUTDOWN: 0x34, // '4'
  ACCEPT: 0x61, // 'a'
  REPLBODY: 0x62, // 'b'
  CONTINUE: 0x63, // 'c'
  DISCARD: 0x64, // 'd'
  CHGFROM: 0x65, // 'e'
  CONN_FAIL: 0x66, // 'f'
  ADDHEADER: 0x68, // 'h'
  INSHEADER: 0x69, // 'i'
  SETSYMLIST: 0x6c, // 'l'
  CHGHEADER: 0x6d, // 'm'
  PROGRESS: 0x70, // 'p'
  QUARANTINE: 0x71, // 'q'
  REJECT: 0x72, // 'r'
  SKIP: 0x73, // 's'
  TEMPFAIL: 0x74, // 't'
  REPLYCODE: 0x79, // 'y'
} as const;

/** Action bits: what the filter may do at end of message. */
export const Action = {
  ADDHDRS: 0x1,
  CHGBODY: 0x2,
  ADDRCPT: 0x4,
  DELRCPT: 0x8,
  CHGHDRS: 0x10,
  QUARANTINE: 0x20,
  CHGFROM: 0x40,
  ADDRCPT_PAR: 0x80,
  SETSYMLIST: 0x100,
} as const;
export type ActionName = keyof typeof Action;
export const ALL_ACTIONS = 0x1ff;

/** Protocol step bits: which events the filter does not want, or will not answer. */
export const Step = {
  NOCONNECT: 0x1,
  NOHELO: 0x2,
  NOMAIL: 0x4,
  NORCPT: 0x8,
  NOBODY: 0x10,
  NOHDRS: 0x20,
  NOEOH: 0x40,
  NR_HDR: 0x80,
  NOUNKNOWN: 0x100,
  NODATA: 0x200,
  SKIP: 0x400,
  RCPT_REJ: 0x800,
  NR_CONN: 0x1000,
  NR_HELO: 0x2000,
  NR_MAIL: 0x4000,
  NR_RCPT: 0x8000,
  NR_DATA: 0x10000,
  NR_UNKN: 0x20000,
  NR_EOH: 0x40000,
  NR_BODY: 0x80000,
  HDR_LEADSPC: 0x100000,
  MDS_256K: 0x10000000,
  MDS_1M: 0x20000000,
} as const;

/** Stages at which the filter may ask for a list of macros (set-symlist). */
export const MacroStage = {
  connect: 0,
  helo: 1,
  mail: 2,
  rcpt: 3,
  data: 4,
  eom: 5,
  eoh: 6,
} as const;
export type MacroStageName = keyof typeof MacroStage;

/**
 * The events a filter can be told about. Each has a "do not send" step bit
 * and, except end of message, a "do not expect a reply" step bit.
 */
export const EVENT_STEPS = {
  connect: { no: Step.NOCONNECT, noReply: Step.NR_CONN },
  helo: { no: Step.NOHELO, noReply: Step.NR_HELO },
  mail: { no: Step.NOMAIL, noReply: Step.NR_MAIL },
  rcpt: { no: Step.NORCPT, noReply: Step.NR_RCPT },
  data: { no: Step.NODATA, noReply: Step.NR_DATA },
  header: { no: Step.NOHDRS, noReply: Step.NR_HDR },
  eoh: { no: Step.NOEOH, noReply: Step.NR_EOH },
  body: { no: Step.NOBODY, noReply: Step.NR_BODY },
  unknown: { no: Step.NOUNKNOWN, noReply: Step.NR_UNKN },
} as const;
export type EventName = keyof typeof EVENT_STEPS;
export const EVENT_NAMES = Object.keys(EVENT_STEPS) as EventName[];

/** Macro stage tags in a MACRO packet, by command byte. */
export const MACRO_TAG_STAGE: Readonly<Record<number, string>> = {
  [Cmd.CONNECT]: 'connect',
  [Cmd.HELO]: 'helo',
  [Cmd.MAIL]: 'mail',
  [Cmd.RCPT]: 'rcpt',
  [Cmd.DATA]: 'data',
  [Cmd.EOH]: 'eoh',
  [Cmd.BODYEOB]: 'eom',
  [Cmd.HEADER]: 'header',
  [Cmd.BODY]: 'body',
  [Cmd.UNKNOWN]: 'unknown',
};
