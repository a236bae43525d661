/**
 * Bounds for parsing MIME. They keep hostile input (deep nesting, millions of
 * parts or headers, endless lines) cheap to refuse; the defaults are far above
 * anything real mail needs.
 */

export interface MimeLimits {
  /** Deepest level an entity may sit at; the outermost entity is level 0. */
  readonly maxDepth: number;
  /** Body parts in the whole tree (every entity except the outermost). */
  readonly maxParts: number;
  /** Header fields in one entity's header block. */
  readonly maxHeaders: number;
  /** Bytes of one entity's header block (up to, not including, the blank line). */
  readonly maxHeaderBytes: number;
  /** Bytes of one header field once unfolded (line breaks not counted). */
  readonly maxHeaderLineLength: number;
  /** Bytes of one body line, line break not counted ('binary' bodies exempt). */
  readonly maxLineLength: number;
  /** Bytes of the whole input. */
  readonly maxSize: number;
}

export const DEFAULT_MIME_LIMITS: MimeLimits = Object.freeze({
  maxDepth: 32,
  maxParts: 1000,
  maxHeaders: 1000,
  maxHeaderBytes: 1024 * 1024,
  maxHeaderLineLength: 64 * 1024,
  maxLineLength: 100_000,
  maxSize: 64 * 1024 * 1024,
});

/** Fills in the defaults, so callers (and tests) can tighten a single bound. */
const resolved = new WeakMap<Partial<MimeLimits>, MimeLimits>();

export function resolveLimits(limits?: Partial<MimeLimits>): MimeLimits {
  if (limits === undefined || limits === DEFAULT_MIME_LIMITS) return DEFAULT_MIME_LIMITS;
  // Called on every parse: the same limits object is resolved once.
  let r = resolved.get(limits);
  if (!r) {
    const out: Record<string, number> = { ...DEFAULT_MIME_LIMITS };
    // An explicit `undefined` must not erase a default.
    for (const [key, value] of Object.entries(limits)) if (value !== undefined) out[key] = value;
    r = out as unknown as MimeLimits;
    resolved.set(limits, r);
  }
  return r;
}
