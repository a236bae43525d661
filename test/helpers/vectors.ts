/**
 * The public CMS example objects (RFC 9216 keys) kept in the repository
 * under test/vectors/: found from the compiled helper (dist/test/helpers/),
 * never from the working directory, so a clone anywhere finds them.
 */

import { fileURLToPath } from 'node:url';

export const CMS_VECTORS = fileURLToPath(
  new URL('../../../test/vectors/examples-cms/', import.meta.url),
);
