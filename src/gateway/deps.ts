/** What the gateway application is given: policy, identities, PKI, logging, hooks. */

import type { HarvestedCertificates } from '../pki/harvest.js';
import type { DomainIdentity } from '../pki/identities.js';
import type { Pki } from '../pki/setup.js';
import type { FailurePolicy } from '../policy/actions.js';
import type { InboundRequirements } from '../policy/requirements.js';
import type { OffloadedResult } from '../smime/outbound-offload.js';
import type { InboundContext, OutboundContext, TransformResult } from '../smime/types.js';
import type { Direction, DirectionPolicy } from './direction.js';
import type { OutboundPolicy } from './outbound-plan.js';

export interface GatewayLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface MessageOutcome {
  readonly direction: Direction;
  readonly action: string;
  readonly outcome: 'ok' | 'failed';
  readonly seconds: number;
  readonly smime?: string;
  /** Inbound mail we could not decrypt: the transform's error code (a bounded set). */
  readonly decryptFailure?: string;
}

export interface GatewayDeps {
  readonly directions: DirectionPolicy;
  readonly outbound: OutboundPolicy;
  readonly identities: ReadonlyMap<string, DomainIdentity>;
  readonly pki: Pki;
  readonly authservId: string;
  /** The action per failure kind, DOMSEC_ON_ERROR as the fallback. */
  readonly failures: FailurePolicy;
  readonly requirements: InboundRequirements;
  readonly adminAddress: string | undefined;
  /** Inbound: keep verified multipart/signed layers for clients that show signatures. */
  readonly keepSignatures?: boolean;
  readonly log: GatewayLogger;
  readonly onMessage?: (o: MessageOutcome) => void;
  /** Where certificates harvested from verified inbound mail go. */
  readonly harvested?: HarvestedCertificates;
  /**
   * Largest message, as assembled (header fields, blank line, body), kept in
   * memory for the transform. Past it the body is dropped as it arrives and
   * the message ends as an internal error (DOMSEC_ON_INTERNAL_ERROR). Default:
   * the MIME layer's maxSize, beyond which no transform could read it anyway.
   */
  readonly maxMessageBytes?: number;
  /**
   * Inbound mail that arrived encrypted is answered at the next multiple of
   * this many milliseconds after end of message (0 or absent: at once).
   */
  readonly encryptedReplyQuantumMs?: number;
  /**
   * Where messages of at least `minBytes` are transformed (worker threads in
   * `serve`, so a 25 MB message does not hold up the others); the event loop
   * when absent. Outbound by `transform`, inbound by `transformInbound`.
   */
  readonly offload?: {
    readonly minBytes: number;
    transform(message: Buffer, context: OutboundContext): Promise<OffloadedResult>;
    /** The inbound transform's result; `message` stays the caller's, unchanged. */
    transformInbound?(message: Buffer, context: InboundContext): Promise<TransformResult>;
  };
}
