/**
 * docs/IMGIX.md against imgix's own list of Rendering API parameters (imgix-url-params) and
 * against the parser: every imgix parameter has a row, every row that claims support names only
 * parameters the edge reads, and every parameter the edge reads is claimed.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PARAM_ALIASES, TRANSFORM_PARAM_NAMES } from '../../src/transform/params.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const spec = createRequire(import.meta.url)('imgix-url-params/dist/parameters.json') as { parameters: Record<string, unknown> };

interface Row {
  names: string[];
  status: string;
}

async function rows(): Promise<Row[]> {
  const doc = await readFile(path.join(ROOT, 'docs', 'IMGIX.md'), 'utf8');
  return doc
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => {
      const [names = '', status = ''] = line.split('|').slice(1).map((c) => c.trim());
      return { names: [...names.matchAll(/`([a-z0-9-]+)[^`]*`/g)].map((m) => m[1]!), status };
    });
}

describe('docs/IMGIX.md: the conformance table', () => {
  it('has a row for every parameter of imgix\'s Rendering API', async () => {
    const named = new Set((await rows()).flatMap((r) => r.names));
    const missing = Object.keys(spec.parameters).filter((p) => !named.has(p));
    assert.deepEqual(missing, [], 'imgix parameters the table does not mention');
    assert.ok(Object.keys(spec.parameters).length > 150, 'the whole list was read');
  });

  it('claims support only for parameters the edge reads, and claims every one it reads', async () => {
    const all = await rows();
    for (const r of all) assert.ok(['supported', 'partly', 'not supported'].includes(r.status), `status "${r.status}" of ${r.names.join(', ')}`);
    const claimed = new Set(all.filter((r) => r.status !== 'not supported').flatMap((r) => r.names));
    const unread = [...claimed].filter((n) => !TRANSFORM_PARAM_NAMES.has(n));
    assert.deepEqual(unread, [], 'claimed but not read by the parser');
    const aliases = new Set(Object.values(PARAM_ALIASES).flat());
    const unclaimed = [...TRANSFORM_PARAM_NAMES].filter((n) => n !== 's' && !aliases.has(n) && !claimed.has(n) && !(PARAM_ALIASES[n] ?? []).some((a) => claimed.has(a)));
    assert.deepEqual(unclaimed, [], 'read by the parser but not in the table as supported');
  });
});
