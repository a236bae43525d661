/** Building reports, and turning any thrown error into a typed failure result. */

import { CmsError } from '../cms/asn1.js';
import { MimeError } from '../mime/index.js';
import type { Authors } from './authors.js';
import type { LayerReport, TransformErrorCode, TransformReport, TransformResult } from './types.js';

export interface ReportBuilder {
  action(a: string): void;
  note(n: string): void;
  layer(l: LayerReport): void;
  cipher(c: string): void;
  keyTransport(k: string): void;
  authors(a: Authors): void;
  done(): TransformReport;
}

export function reportBuilder(direction: 'outbound' | 'inbound'): ReportBuilder {
  const actions: string[] = [];
  const notes: string[] = [];
  const layers: LayerReport[] = [];
  let cipher: string | undefined;
  let keyTransport: string | undefined;
  let authors: Authors | undefined;
  return {
    action: (a) => actions.push(a),
    note: (n) => notes.push(n),
    layer: (l) => layers.push(l),
    cipher: (c) => {
      cipher = c;
    },
    keyTransport: (k) => {
      keyTransport = k;
    },
    authors: (a) => {
      authors = a;
    },
    done: () => ({
      direction,
      actions,
      notes,
      layers,
      ...(cipher ? { cipher } : {}),
      ...(keyTransport ? { keyTransport } : {}),
      ...(authors ? { authors } : {}),
    }),
  };
}

const CMS_CODES: Partial<Record<CmsError['code'], TransformErrorCode>> = {
  'no-recipient': 'not-encrypted-to-us',
  'decrypt-failed': 'decrypt-failed',
  'key-mismatch': 'decrypt-failed',
  unsupported: 'unsupported',
  'too-large': 'too-large',
};

/** A failed result: from an explicit code and message, or from whatever was thrown. */
export function failure(
  report: ReportBuilder,
  codeOrError: unknown,
  message?: string,
): TransformResult {
  let code: TransformErrorCode = 'internal';
  let text = message ?? '';
  if (typeof codeOrError === 'string' && message !== undefined) {
    code = codeOrError as TransformErrorCode;
  } else if (codeOrError instanceof CmsError) {
    code = CMS_CODES[codeOrError.code] ?? 'malformed-cms';
    text = codeOrError.message;
  } else if (codeOrError instanceof MimeError) {
    code = codeOrError.code === 'too-large' ? 'too-large' : 'malformed-mime';
    text = codeOrError.message;
  } else {
    text = codeOrError instanceof Error ? codeOrError.message : String(codeOrError);
  }
  return { ok: false, error: { code, message: text }, report: report.done() };
}
