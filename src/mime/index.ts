/** MIME parsing and building for S/MIME: byte-exact, bounded, hand-written. */

export {
  buildEntity,
  buildMultipart,
  formatContentType,
  generateBoundary,
} from './build.js';
export { type ContentType, contentType, defaultContentType } from './content-type.js';
export {
  base64LinePieces,
  base64LinesLength,
  canonicalize,
  decodeBase64,
  decodeQuotedPrintable,
  decodeTransferEncoding,
  encodeBase64Lines,
  encodeQuotedPrintable,
  hasEightBitLabel,
  isSevenBit,
  writeBase64Lines,
} from './encoding.js';
export { type MimeEntity, parseEntity } from './entity.js';
export { MimeError, type MimeErrorCode } from './errors.js';
export {
  bodyOf,
  findAll,
  findHeader,
  type HeaderField,
  headerValue,
  makeHeader,
  parseContentTransferEncoding,
  parseContentType,
  type SplitMessage,
  sameBody,
  serializeHeaders,
  splitAdmitted,
  splitContentHeaders,
  splitMessage,
} from './headers.js';
export { DEFAULT_MIME_LIMITS, type MimeLimits, resolveLimits } from './limits.js';
export { splitMultipart } from './multipart.js';
export { toSevenBitEntity } from './seven-bit.js';
