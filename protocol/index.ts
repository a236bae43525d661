/** The milter protocol, version 6: server, client, codec. Knows nothing of S/MIME. */
export {
  type EndOfMessageResult,
  type MessageSpec,
  MilterClient,
  POSTFIX_OFFER,
} from './client.js';
export {
  type AddressFamily,
  type ConnectInfo,
  decodeCommand,
  encodeCommand,
  type MtaCommand,
} from './commands.js';
export * from './constants.js';
export { MilterProtocolError, MilterTimeoutError, MilterUsageError } from './errors.js';
export { DEFAULT_MAX_FRAME, encodeFrame, type Frame, FrameDecoder } from './frame.js';
export type * from './handler.js';
export { formatListenSpec, type ListenSpec, ListenSpecError, parseListenSpec } from './listen.js';
export {
  type Capabilities,
  type MtaOffer,
  macroWireName,
  type Negotiated,
  negotiate,
} from './negotiate.js';
export {
  type Decision,
  Decisions,
  decodeFilterPacket,
  encodeFilterPacket,
  type FilterPacket,
  formatReplyCode,
  type Modification,
  type NegotiationReply,
  replyCode,
} from './replies.js';
export { MilterServer, type ServerOptions } from './server.js';
export { type ConnectionOptions, MilterConnection } from './session.js';
