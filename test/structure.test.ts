/**
 * The code's layering, drawn from its imports: the stages below the HTTP layer never import it,
 * and no module imports itself through others.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
/** The stages the front ends (the edge's HTTP layer and the optimization API) stand on. */
const BELOW_HTTP = ['optimize', 'cache', 'transform', 'origin', 'purge', 'config', 'observe'];
/** The front ends: neither imports the other. */
const FRONT_ENDS = ['http', 'api'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const file = path.join(dir, d.name);
    if (d.isDirectory()) return sourceFiles(file);
    return d.name.endsWith('.ts') ? [file] : [];
  });
}

/** Each module's relative imports (type-only ones too: they tie the modules together all the same). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const targets = [...readFileSync(file, 'utf8').matchAll(/(?:import|export)[^'";]*?from\s+'(\.[^']+)'/g)].map((m) =>
      path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')),
    );
    graph.set(file, targets);
  }
  return graph;
}

const stageOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!;

describe('code structure', () => {
  const graph = importGraph();

  it('reads the imports of every module', () => {
    assert.ok(graph.size > 50, `${graph.size} modules`);
    assert.ok([...graph.values()].some((targets) => targets.some((t) => stageOf(t) === 'http')), 'the HTTP layer is imported somewhere');
  });

  it('no stage below the HTTP layer imports it', () => {
    const crossings = [...graph].flatMap(([file, targets]) =>
      BELOW_HTTP.includes(stageOf(file)) ? targets.filter((t) => stageOf(t) === 'http').map((t) => `${path.relative(SRC, file)} → ${path.relative(SRC, t)}`) : [],
    );
    assert.deepEqual(crossings, []);
  });

  it('the miss path lives below the HTTP layer, and the two front ends do not import each other', () => {
    assert.ok(graph.has(path.join(SRC, 'optimize', 'variant.ts')), 'src/optimize/variant.ts');
    const crossings = [...graph].flatMap(([file, targets]) => {
      const from = stageOf(file);
      if (!FRONT_ENDS.includes(from)) return [];
      return targets.filter((t) => FRONT_ENDS.includes(stageOf(t)) && stageOf(t) !== from).map((t) => `${path.relative(SRC, file)} → ${path.relative(SRC, t)}`);
    });
    assert.deepEqual(crossings, []);
  });

  it('has no import cycles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const trail: string[] = [];
    const visit = (file: string) => {
      state.set(file, 'open');
      trail.push(file);
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'open') cycles.push([...trail.slice(trail.indexOf(next)), next].map((f) => path.relative(SRC, f)).join(' → '));
        else if (!state.has(next) && graph.has(next)) visit(next);
      }
      trail.pop();
      state.set(file, 'done');
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file);
    assert.deepEqual(cycles, []);
  });
});
