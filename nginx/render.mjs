#!/usr/bin/env node
// Renders nginx/imgedge.conf for one deployment (plain Node, no dependencies, no build step).
//
//   node nginx/render.mjs NODES=10.0.0.11:8081-8082,10.0.0.12:8081-8082 SERVER_NAMES=img.example.com \
//        TLS_CERT=/etc/ssl/img.pem TLS_KEY=/etc/ssl/private/img.key ADMIN_NETS=127.0.0.1,10.0.0.0/8 \
//        > /etc/nginx/conf.d/imgedge.conf
//   node nginx/render.mjs --api API_NODES=10.0.0.11:8091,10.0.0.12:8091 API_SERVER_NAMES=api.example.com \
//        API_TLS_CERT=/etc/ssl/api.pem API_TLS_KEY=/etc/ssl/private/api.key > /etc/nginx/conf.d/imgedge-api.conf
//
// Template syntax: {{NAME}} must be given; {{NAME=default}} has a default; {{@NAME}} is a list
// (comma-separated on the command line) and its line is repeated once per value, or dropped when
// the list is empty. `node nginx/render.mjs --list` prints every placeholder with its default.
// In NODES, `host:8081-8082` stands for one edge process per port (deploy/imgedge@.service).
// Also used by the tests (test/helpers/nginx.ts), so what is tested is what is installed.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const TEMPLATE_PATH = fileURLToPath(new URL('./imgedge.conf', import.meta.url));
/** The optimization API's server (`--api`). */
export const API_TEMPLATE_PATH = fileURLToPath(new URL('./imgedge-api.conf', import.meta.url));

const TOKEN = /\{\{(@?)([A-Z][A-Z0-9_]*)(?:=([^}]*))?\}\}/g;
// A value is one nginx word: no whitespace, quotes, `;`, braces, `$` (variables) or `#` (comments),
// so no value can end a directive early or smuggle in one of its own.
const WORD = /^[^\s;{}"'$#\\]+$/;

/** Every placeholder of a template: name, whether it is a list, its default (undefined: required). */
export function placeholders(template) {
  const found = new Map();
  for (const [, list, name, def] of template.matchAll(TOKEN)) {
    if (!found.has(name)) found.set(name, { name, list: list === '@', default: def });
  }
  return [...found.values()];
}

const asList = (v) => (Array.isArray(v) ? v : String(v).split(',')).map((s) => String(s).trim()).filter((s) => s !== '');

/**
 * Fills a template. values: { NAME: string | string[] }. Throws one error listing every problem
 * (missing value, unknown name, a value that is not a single nginx word, an empty required list).
 */
export function render(template, values = {}) {
  const known = new Map(placeholders(template).map((p) => [p.name, p]));
  const problems = [];
  for (const name of Object.keys(values)) if (!known.has(name)) problems.push(`${name}: no such placeholder`);
  const resolved = new Map();
  for (const p of known.values()) {
    const given = values[p.name];
    if (p.list) {
      const items = asList(given ?? p.default ?? '');
      if (items.length === 0 && p.default === undefined) problems.push(`${p.name}: needs at least one value`);
      resolved.set(p.name, items);
    } else {
      const value = given !== undefined ? String(given).trim() : p.default;
      if (value === undefined || value === '') problems.push(`${p.name}: needs a value`);
      resolved.set(p.name, value ?? '');
    }
  }
  for (const [name, value] of resolved) {
    for (const v of Array.isArray(value) ? value : value === '' ? [] : [value]) {
      if (!WORD.test(v)) problems.push(`${name}: ${JSON.stringify(v)} is not a single nginx word`);
    }
  }
  if (problems.length > 0) throw new Error(`cannot render the nginx config:\n  ${problems.join('\n  ')}`);

  const out = [];
  for (const line of template.split('\n')) {
    const lists = [...line.matchAll(TOKEN)].filter((m) => m[1] === '@').map((m) => m[2]);
    if (new Set(lists).size > 1) throw new Error(`one list placeholder per line: ${line.trim()}`);
    const fill = (item) => line.replace(TOKEN, (_, list, name) => (list === '@' ? item : resolved.get(name)));
    if (lists.length === 0) out.push(fill(''));
    else for (const item of resolved.get(lists[0])) out.push(fill(item));
  }
  return `# Rendered from nginx/imgedge.conf by nginx/render.mjs: edit the template, not this file.\n${out.join('\n')}`;
}

/** `host:8081-8084` → host:8081 … host:8084 (one edge process per port); other items as they are. */
export function expandPortRanges(nodes) {
  return asList(nodes ?? []).flatMap((node) => {
    const range = /^(.+):(\d+)-(\d+)$/.exec(node);
    if (!range) return [node];
    const [, host, first, last] = range;
    const count = Number(last) - Number(first) + 1;
    if (count < 1 || count > 256) throw new Error(`cannot render the nginx config:\n  NODES: ${JSON.stringify(node)} is not a range of 1 to 256 ports`);
    return Array.from({ length: count }, (_, i) => `${host}:${Number(first) + i}`);
  });
}

/** The template shipped next to this file, rendered (NODES may hold port ranges). */
export function renderImgedgeConf(values) {
  return render(readFileSync(TEMPLATE_PATH, 'utf8'), withNodesExpanded(values));
}

/** nginx/imgedge-api.conf rendered (API_NODES may hold port ranges). */
export function renderApiConf(values) {
  return render(readFileSync(API_TEMPLATE_PATH, 'utf8'), withNodesExpanded(values));
}

const withNodesExpanded = (values) => {
  const out = { ...values };
  for (const name of ['NODES', 'API_NODES']) if (out[name] !== undefined) out[name] = expandPortRanges(out[name]);
  return out;
};

function cli(argv) {
  const api = argv.includes('--api');
  const args = argv.filter((a) => a !== '--api');
  const template = readFileSync(api ? API_TEMPLATE_PATH : TEMPLATE_PATH, 'utf8');
  if (args.includes('--list')) {
    for (const p of placeholders(template)) {
      const def = p.default === undefined ? '(required)' : `default ${JSON.stringify(p.default)}`;
      process.stdout.write(`${p.name}${p.list ? ' (list)' : ''} ${def}\n`);
    }
    return 0;
  }
  const values = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) {
      process.stderr.write(`render: expected NAME=value, got ${JSON.stringify(arg)}\n`);
      return 2;
    }
    values[arg.slice(0, eq)] = arg.slice(eq + 1);
  }
  try {
    process.stdout.write(render(template, withNodesExpanded(values)));
    return 0;
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = cli(process.argv.slice(2));
