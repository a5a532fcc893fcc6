import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfig, parseConfig } from '../../src/config/load.js';
import { MAIN_JS, removeDir, tempDir } from '../helpers/edge.js';

test('the embedded default config is valid and points at the bundled demo origin', async () => {
  const cfg = await loadConfig({});
  assert.equal(cfg.server.port, 8080);
  assert.equal(cfg.sites.length, 1);
  assert.equal(cfg.sites[0]!.origin, `file://${path.resolve(path.dirname(DEFAULT_CONFIG_PATH), '../examples/site')}`);
  assert.equal(cfg.sites[0]!.defaults, 'auto=format,compress');
});

test('env variables override the config for the default site', async () => {
  const cfg = await loadConfig({
    IMGEDGE_PORT: '9191',
    IMGEDGE_HOST: '127.0.0.2',
    IMGEDGE_ORIGIN: 'https://images.example.com/base',
    IMGEDGE_CACHE_DIR: '/tmp/imgedge-x',
    IMGEDGE_CACHE_MAX_BYTES: '12345',
    IMGEDGE_TTL: '60',
    IMGEDGE_LOG_LEVEL: 'warn',
    IMGEDGE_TRANSFORM_CONCURRENCY: '2',
  });
  assert.equal(cfg.server.port, 9191);
  assert.equal(cfg.server.host, '127.0.0.2');
  assert.equal(cfg.sites[0]!.origin, 'https://images.example.com/base');
  assert.equal(cfg.sites[0]!.ttl, 60);
  assert.equal(cfg.cache.dir, '/tmp/imgedge-x');
  assert.equal(cfg.cache.maxBytes, 12345);
  assert.equal(cfg.log.level, 'warn');
  assert.equal(cfg.limits.transformConcurrency, 2);
  assert.equal((await loadConfig({})).limits.transformConcurrency, undefined, 'unset: 2 × cores, chosen at start');
  for (const bad of ['0', 'two']) {
    await assert.rejects(loadConfig({ IMGEDGE_TRANSFORM_CONCURRENCY: bad }), (err: unknown) => err instanceof ConfigError && /IMGEDGE_TRANSFORM_CONCURRENCY|transformConcurrency/.test(err.problems.join('\n')), bad);
  }
});

test('IMGEDGE_LOG_HITS turns the lines of fresh hits off or on; anything but 1, 0, true or false is refused by name', async () => {
  assert.equal((await loadConfig({})).log.hits, true, 'on unless told otherwise');
  assert.equal((await loadConfig({ IMGEDGE_LOG_HITS: '0' })).log.hits, false);
  assert.equal((await loadConfig({ IMGEDGE_LOG_HITS: 'false' })).log.hits, false);
  assert.equal((await loadConfig({ IMGEDGE_LOG_HITS: '1' })).log.hits, true);
  assert.equal((await loadConfig({ IMGEDGE_LOG_HITS: ' FALSE ' })).log.hits, false, 'read as the URL parameters read 0, 1, true and false');
  for (const bad of ['no', 'off', '2']) {
    await assert.rejects(loadConfig({ IMGEDGE_LOG_HITS: bad }), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith('IMGEDGE_LOG_HITS: ')), bad);
  }
});

test('env variables set the optimization API: its address, keys, S3 endpoint and allowed networks', async () => {
  const cfg = await loadConfig({
    IMGEDGE_API_PORT: '8091',
    IMGEDGE_API_HOST: '10.0.0.11',
    IMGEDGE_API_PUBLIC_URL: 'https://api.example.com/kraken',
    IMGEDGE_API_KEYS: 'key-one-1234:secret-one-1234567890, key-two-1234:sec:ret-two-1234567890',
    IMGEDGE_S3_ENDPOINT: 'http://127.0.0.1:9000',
    IMGEDGE_API_ALLOW_NETWORKS: '127.0.0.0/8, 10.0.0.0/8',
  });
  assert.equal(cfg.api.port, 8091);
  assert.equal(cfg.api.host, '10.0.0.11');
  assert.equal(cfg.api.publicUrl, 'https://api.example.com/kraken');
  assert.deepEqual(cfg.api.keys, [
    { key: 'key-one-1234', secret: 'secret-one-1234567890' },
    { key: 'key-two-1234', secret: 'sec:ret-two-1234567890' },
  ]);
  assert.equal(cfg.api.s3.endpoint, 'http://127.0.0.1:9000');
  assert.deepEqual(cfg.api.allowNetworks, ['127.0.0.0/8', '10.0.0.0/8']);
  assert.equal((await loadConfig({})).api.host, '127.0.0.1', 'the API listens on loopback unless told otherwise');
  await assert.rejects(loadConfig({ IMGEDGE_API_PORT: '8091', IMGEDGE_API_HOST: '0.0.0.0' }), (err: unknown) => err instanceof ConfigError && /api\.publicUrl/.test(err.problems.join('\n')));
  assert.equal((await loadConfig({ IMGEDGE_API_PORT: '8091', IMGEDGE_API_HOST: '0.0.0.0', IMGEDGE_API_PUBLIC_URL: 'https://api.example.com' })).api.host, '0.0.0.0');
  await assert.rejects(loadConfig({ IMGEDGE_API_KEYS: 'no-secret-here' }), (err: unknown) => err instanceof ConfigError && /IMGEDGE_API_KEYS/.test(err.problems.join('\n')));
});

test('a bad config reports every problem at once', () => {
  assert.throws(
    () =>
      parseConfig(
        {
          server: { port: 'eighty' },
          cache: { maxBytes: -1 },
          sites: [{ name: 'a', origin: 'ftp://x', defaults: 'q=0' }, { name: 'a', origin: 'file:/srv', ttl: 1.5 }],
          bogus: 1,
        },
        { IMGEDGE_TTL: 'soon' },
      ),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const text = err.problems.join('\n');
      for (const expected of ['sites.0.defaults', 'IMGEDGE_TTL', 'server.port', 'cache.maxBytes', 'sites.0.origin', 'sites.1.ttl', 'duplicate site name', 'bogus']) {
        assert.match(text, new RegExp(expected.replace('.', '\\.')), `missing "${expected}" in:\n${text}`);
      }
      return true;
    },
  );
});

test('the server refuses to start on a bad config and lists the problems', async () => {
  const dir = await tempDir();
  try {
    const file = path.join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ sites: [{ name: 'x', origin: 'gopher://old' }], cache: { memoryBytes: -5 } }));
    const child = spawn(process.execPath, [MAIN_JS], { env: { ...process.env, IMGEDGE_CONFIG: file }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 1);
    assert.match(stderr, /sites\.0\.origin/);
    assert.match(stderr, /cache\.memoryBytes/);
  } finally {
    await removeDir(dir);
  }
});
