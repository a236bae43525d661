// Rewrites the table of variables in README.md from the configuration schema
// (dist/src/config.js; run `npm run build` first). The README test checks they agree.
import { readFileSync, writeFileSync } from 'node:fs';

const { VARIABLES } = await import('../dist/src/config.js');
const escapePipes = (t) => t.replace(/\|/g, '\\|');
const rows = VARIABLES.map(
  (v) =>
    `| \`${v.name}\` | ${v.default === '' ? '(unset)' : `\`${v.default}\``} | ${escapePipes(v.description)} |`,
);
const lines = readFileSync('README.md', 'utf8').split('\n');
const first = lines.findIndex((l) => l.startsWith('| `DOMSEC_'));
let last = first;
while (lines[last + 1]?.startsWith('| `DOMSEC_')) last++;
lines.splice(first, last - first + 1, ...rows);
writeFileSync('README.md', lines.join('\n'));
