/**
 * The one error type of the MIME layer. Every bound that is hit and every
 * input that cannot be read throws a MimeError, so callers need exactly one
 * catch to turn hostile mail into a clear decision (tempfail, pass, reject).
 */

export type MimeErrorCode =
  | 'too-deep'
  | 'too-many-parts'
  | 'too-many-headers'
  | 'line-too-long'
  | 'too-large'
  | 'malformed';

export class MimeError extends Error {
  override readonly name = 'MimeError';
  readonly code: MimeErrorCode;

  constructor(code: MimeErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
