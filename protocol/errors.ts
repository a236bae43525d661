/** A violation of the milter protocol by the peer: the connection is closed, nothing else. */
export class MilterProtocolError extends Error {
  override readonly name = 'MilterProtocolError';
}

/** A handler asked for something that was not negotiated or is not allowed at this stage. */
export class MilterUsageError extends Error {
  override readonly name = 'MilterUsageError';
}

/** A handler or the peer took longer than allowed. */
export class MilterTimeoutError extends Error {
  override readonly name = 'MilterTimeoutError';
}
