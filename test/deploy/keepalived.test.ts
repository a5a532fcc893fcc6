/**
 * keepalived/ and deploy/ checked by the real tools: keepalived --config-test on both shipped
 * configs, the track and notify scripts against real HTTP servers, a MASTER/BACKUP pair doing VRRP
 * in two network namespaces of the test's own (the virtual IP must move within 3 s when the
 * master's nginx dies), and the systemd unit (systemd-analyze verify, and the edge started with
 * the unit's environment).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiskStore } from '../../src/cache/disk-store.js';
import { MemoryStore } from '../../src/cache/memory-store.js';
import { TieredStore } from '../../src/cache/tiered-store.js';
import { parseConfig } from '../../src/config/load.js';
import { createEdgeServer } from '../../src/http/server.js';
import { createLogger } from '../../src/observe/logger.js';
import { PurgeEpoch } from '../../src/purge/epoch.js';
import type { PurgeBus } from '../../src/purge/types.js';
import { removeDir as removeEdgeDir, spawnEdge, tempDir as edgeTempDir, testConfig } from '../helpers/edge.js';
import { photoJpeg } from '../helpers/images.js';
import {
  KEEPALIVED_DIR,
  Keepalived,
  Netns,
  ROOT,
  StandIn,
  missing,
  readIfExists,
  readShipped,
  recordingHook,
  removeDir,
  renderKeepalived,
  run,
  runAsync,
  stageScripts,
  tempDir,
  until,
  vethPair,
  which,
} from '../helpers/keepalived.js';
import { TestOrigin } from '../helpers/origin.js';

const CHECK = path.join(KEEPALIVED_DIR, 'check-edge.sh');
const NOTIFY = path.join(KEEPALIVED_DIR, 'notify.sh');
const UNIT = path.join(ROOT, 'deploy', 'imgedge@.service');
/** Per-run names: two runs at once (or a leftover of a killed run) never share a namespace. */
const RUN_ID = `ie-ka-${process.pid}`;

describe('keepalived configs', () => {
  let work: string;
  before(async () => {
    work = await tempDir('imgedge-ka-conf-');
  });
  after(async () => {
    await removeDir(work);
  });

  test('the MASTER and BACKUP files differ only in the lines meant to differ', async () => {
    const master = (await readShipped('keepalived.conf')).split('\n');
    const backup = (await readShipped('keepalived-backup.conf')).split('\n');
    assert.equal(master.length, backup.length, 'same number of lines');
    const differing = master.flatMap((line, i) => (line === backup[i] ? [] : [[line.trim(), backup[i]!.trim()]]));
    const expected = [
      ['# imgedge — keepalived on the FIRST load balancer (MASTER of the virtual IP).', '# imgedge — keepalived on the SECOND load balancer (BACKUP of the virtual IP).'],
      [/^# Install as /, /^# Install as /],
      ['$SELF_IP=192.0.2.11', '$SELF_IP=192.0.2.12'],
      ['$PEER_IP=192.0.2.12', '$PEER_IP=192.0.2.11'],
      ['router_id imgedge-lb1', 'router_id imgedge-lb2'],
      ['# differs: MASTER here, BACKUP on the peer', '# differs: BACKUP here, MASTER on the peer'],
      ['state MASTER', 'state BACKUP'],
      [/^# differs: 250 here/, /^# differs: 200 here/],
      ['priority 250', 'priority 200'],
    ];
    assert.equal(differing.length, expected.length, `differing lines:\n${differing.map((d) => d.join('  |  ')).join('\n')}`);
    differing.forEach(([m, b], i) => {
      const [em, eb] = expected[i]!;
      if (typeof em === 'string') assert.deepEqual([m, b], [em, eb]);
      else assert.ok((em as RegExp).test(m!) && (eb as RegExp).test(b!), `${m} | ${b}`);
    });
  });

  // --config-test needs the interface the config names: a namespace of the test's own gets an
  // eth0 (one end of a veth pair: kernels without the dummy module have veth), so the files are
  // tested exactly as shipped; only the scripts' folder is moved.
  const configTest = async (t: TestContext, file: 'keepalived.conf' | 'keepalived-backup.conf', scriptsDir?: string) => {
    const ns = Netns.create(`${RUN_ID}-t`);
    try {
      ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0-peer');
      ns.ip('link', 'set', 'eth0', 'up');
      const scripts = scriptsDir ?? (await stageScripts(work));
      const conf = path.join(work, `${t.name.length}-${file}`);
      await writeFile(conf, renderKeepalived(await readShipped(file), { SCRIPTS: scripts }));
      return ns.exec(which('keepalived')!, ['--config-test', '--use-file', conf]);
    } finally {
      ns.delete();
    }
  };

  for (const file of ['keepalived.conf', 'keepalived-backup.conf'] as const) {
    test(`keepalived --config-test accepts ${file} with no warning`, async (t) => {
      const why = missing(['keepalived', 'ip', 'curl'], { root: true });
      if (why) return t.skip(why);
      const r = await configTest(t, file);
      assert.equal(r.signal, null, `keepalived -t was killed by ${r.signal}: ${r.stderr}`);
      assert.equal(r.status, 0, `keepalived -t exited ${r.status}:\n${r.stderr}`);
      assert.equal(r.stderr.trim(), '', 'no warnings');
    });
  }

  test('keepalived --config-test fails when the track script is missing (the check is real)', async (t) => {
    const why = missing(['keepalived', 'ip'], { root: true });
    if (why) return t.skip(why);
    const r = await configTest(t, 'keepalived.conf', path.join(work, 'no-such-folder'));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /chk_imgedge/);
  });
});

/** An HTTP server on loopback answering every request with `status` after `delayMs`. */
async function httpStub(status: number, delayMs = 0): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    setTimeout(() => {
      res.statusCode = status;
      res.end('stub');
    }, delayMs).unref();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** An edge in this process whose shared store (the purge bus) answers `healthy` as told. */
async function edgeWithBus(cacheDir: string, bus: Pick<PurgeBus, 'healthy'>): Promise<{ url: string; close(): Promise<void> }> {
  const config = testConfig('http://127.0.0.1:9', cacheDir);
  const disk = await DiskStore.open({ dir: cacheDir, maxBytes: config.cache.maxBytes, sweepIntervalMs: 3_600_000, staleRetentionMs: 0 });
  const cache = new TieredStore(new MemoryStore({ maxBytes: config.cache.memoryBytes }), disk);
  const fullBus: PurgeBus = {
    publish: async () => 0,
    catchUp: async () => 0,
    healthy: bus.healthy,
    unverifiedBefore: () => undefined,
    nodes: async (self) => [self],
    close: async () => {},
  };
  const edge = createEdgeServer(config, cache, createLogger('silent'), fullBus, new PurgeEpoch());
  const address = await edge.listen(0, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: async () => {
      await edge.close();
      await cache.close();
    },
  };
}

describe('check-edge.sh (the track script)', () => {
  let work: string;
  const stubs: Array<{ close(): Promise<void> }> = [];
  const stub = async (status: number, delayMs = 0) => {
    const s = await httpStub(status, delayMs);
    stubs.push(s);
    return s.url;
  };
  const check = (...args: string[]) => runAsync(CHECK, args, { timeoutMs: 10_000 });

  before(async () => {
    work = await tempDir('imgedge-ka-check-');
  });
  after(async () => {
    await Promise.all(stubs.map((s) => s.close()));
    await removeDir(work);
  });

  test('exit 0 when nginx answers (any status) and the edge is ready; 1 when nginx does not answer; 2 when the edge is not ready', async (t) => {
    const why = missing(['curl']);
    if (why) return t.skip(why);
    const nginx404 = await stub(404);
    const nginx502 = await stub(502);
    const ready = `${await stub(200)}/_edge/ready`;
    const notReady = `${await stub(503)}/_edge/ready`;
    const closed = await httpStub(200);
    await closed.close(); // a port where nothing listens any more: connection refused
    const noFile = path.join(work, 'no-maintenance');

    assert.equal((await check('--nginx', nginx404, '--ready', ready, '--maintenance-file', noFile)).status, 0);
    assert.equal((await check('--nginx', nginx502, '--ready', ready, '--maintenance-file', noFile)).status, 0);
    const down = await check('--nginx', closed.url, '--ready', ready, '--maintenance-file', noFile);
    assert.equal(down.status, 1);
    assert.match(down.stderr, /nginx does not answer/);
    const unready = await check('--nginx', nginx404, '--ready', notReady, '--maintenance-file', noFile);
    assert.equal(unready.status, 2);
    assert.match(unready.stderr, /edge not ready .*HTTP 503/);
    assert.equal((await check('--nginx', nginx404, '--ready', `${closed.url}/_edge/ready`, '--maintenance-file', noFile)).status, 2);
    assert.equal((await check('--bogus')).status, 3);
    assert.equal((await check('--nginx')).status, 3);
  });

  test('a hung nginx or edge fails within the timeout', async (t) => {
    const why = missing(['curl']);
    if (why) return t.skip(why);
    const hung = await stub(200, 5000);
    const ready = `${await stub(200)}/_edge/ready`;
    const noFile = path.join(work, 'no-maintenance');
    let started = performance.now();
    assert.equal((await check('--nginx', hung, '--ready', ready, '--timeout', '0.3', '--maintenance-file', noFile)).status, 1);
    assert.ok(performance.now() - started < 2000, 'gave up within the timeout');
    started = performance.now();
    assert.equal((await check('--nginx', ready, '--ready', hung, '--timeout', '0.3', '--maintenance-file', noFile)).status, 2);
    assert.ok(performance.now() - started < 2000, 'gave up within the timeout');
  });

  test('against a real edge: Redis down (503, cache writable) is not a failure, an unwritable cache is', async (t) => {
    const why = missing(['curl']);
    if (why) return t.skip(why);
    const nginx = await stub(404);
    const cacheDir = path.join(work, 'cache');
    const redisUp = { value: true };
    const edge = await edgeWithBus(cacheDir, { healthy: async () => redisUp.value });
    try {
      const ready = `${edge.url}/_edge/ready`;
      const noFile = path.join(work, 'no-maintenance');
      assert.equal((await check('--nginx', nginx, '--ready', ready, '--maintenance-file', noFile)).status, 0);
      redisUp.value = false;
      assert.equal((await fetch(ready)).status, 503, 'the edge itself says not ready');
      const redisDown = await check('--nginx', nginx, '--ready', ready, '--maintenance-file', noFile);
      assert.equal(redisDown.status, 0, redisDown.stderr);
      assert.match(redisDown.stderr, /shared store \(Redis\) down/);
      await removeDir(cacheDir); // the cache folder is gone: nothing can be written
      const broken = await check('--nginx', nginx, '--ready', ready, '--maintenance-file', noFile);
      assert.equal(broken.status, 2);
      assert.match(broken.stderr, /"cacheWritable":false/);
    } finally {
      await edge.close();
    }
  });

  test('a fresh maintenance file skips the edge (not nginx); one older than 30 minutes is ignored', async (t) => {
    const why = missing(['curl']);
    if (why) return t.skip(why);
    const nginx = await stub(404);
    const notReady = `${await stub(503)}/_edge/ready`;
    const closed = await httpStub(200);
    await closed.close();
    const flag = path.join(work, 'maintenance');
    await writeFile(flag, '');
    const skipped = await check('--nginx', nginx, '--ready', notReady, '--maintenance-file', flag);
    assert.equal(skipped.status, 0);
    assert.match(skipped.stderr, /not checked/);
    assert.equal((await check('--nginx', closed.url, '--ready', notReady, '--maintenance-file', flag)).status, 1, 'nginx is still checked');
    const old = new Date(Date.now() - 31 * 60_000);
    await utimes(flag, old, old);
    const stale = await check('--nginx', nginx, '--ready', notReady, '--maintenance-file', flag);
    assert.equal(stale.status, 2);
    assert.match(stale.stderr, /older than 30 minutes/);
  });
});

describe('notify.sh', () => {
  let work: string;
  before(async () => {
    work = await tempDir('imgedge-ka-notify-');
  });
  after(async () => {
    await removeDir(work);
  });

  test('writes the state file and runs every hook with keepalived’s four arguments; a failing hook is not fatal', async () => {
    const scripts = await stageScripts(work);
    const calls = path.join(work, 'calls');
    await recordingHook(scripts, calls);
    await writeFile(path.join(scripts, 'notify.d', 'broken'), '#!/bin/sh\nexit 7\n', { mode: 0o755 });
    await writeFile(path.join(scripts, 'notify.d', 'not-executable'), `#!/bin/sh\necho ran >> '${calls}'\n`, { mode: 0o644 });
    const stateFile = path.join(work, 'state');
    const notify = (...args: string[]) =>
      run(path.join(scripts, 'notify.sh'), ['--state-file', stateFile, '--hook-dir', path.join(scripts, 'notify.d'), ...args]);

    const r = notify('INSTANCE', 'IMGEDGE', 'MASTER', '200');
    assert.equal(r.status, 0, r.stderr);
    assert.match(await readFile(stateFile, 'utf8'), /^MASTER 200 \d+\n$/);
    assert.equal(notify('INSTANCE', 'IMGEDGE', 'FAULT', '200').status, 0);
    assert.match(await readFile(stateFile, 'utf8'), /^FAULT 200 \d+\n$/);
    assert.equal(await readFile(calls, 'utf8'), 'INSTANCE IMGEDGE MASTER 200\nINSTANCE IMGEDGE FAULT 200\n');
    assert.equal(notify('MASTER').status, 2, 'wrong number of arguments');
    // No hook folder and an unwritable state file: logged, still exit 0 (keepalived must go on).
    const bare = run(NOTIFY, ['--state-file', path.join(work, 'no', 'such', 'dir', 'state'), '--hook-dir', path.join(work, 'none'), 'INSTANCE', 'IMGEDGE', 'BACKUP', '150']);
    assert.equal(bare.status, 0, bare.stderr);
  });
});

describe('VRRP failover between two keepalived in network namespaces', () => {
  // 10.203.N.0/24 exists only on the veth pair between the two namespaces.
  const net = `10.203.${(process.pid % 250) + 1}`;
  const VIP = `${net}.100`;
  const NGINX_PORT = 18080;
  const EDGE_PORT = 18081;
  let skipReason: string | undefined;
  let work: string | undefined;
  let a: Netns | undefined;
  let b: Netns | undefined;
  const keepalived: Keepalived[] = [];
  const standIns: StandIn[] = [];
  let nginxA: StandIn;
  let kaA: Keepalived;
  let kaB: Keepalived;
  let dirA: string;
  let dirB: string;

  const logs = () => `--- keepalived A ---\n${kaA?.output()}\n--- keepalived B ---\n${kaB?.output()}`;
  const state = async (dir: string) => (await readIfExists(path.join(dir, 'state'))).split(' ')[0] ?? '';

  before(async () => {
    skipReason = missing(['keepalived', 'ip', 'curl'], { root: true });
    if (skipReason) return;
    work = await tempDir('imgedge-ka-vrrp-');
    try {
      a = Netns.create(`${RUN_ID}-a`);
      b = Netns.create(`${RUN_ID}-b`);
      vethPair(a, b, 'eth0', `${net}.1/24`, `${net}.2/24`);
    } catch (err) {
      // e.g. no CAP_SYS_ADMIN in a container: say exactly what failed.
      skipReason = `network namespaces are not available here: ${(err as Error).message}`;
      if (process.env.CI === 'true') throw new Error(skipReason);
      return;
    }
    const setUp = async (ns: Netns, file: 'keepalived.conf' | 'keepalived-backup.conf', self: string, peer: string) => {
      const scripts = await stageScripts(work!);
      await recordingHook(scripts, path.join(scripts, 'transitions'));
      const conf = path.join(scripts, file);
      await writeFile(conf, renderKeepalived(await readShipped(file), {
        SELF_IP: self,
        PEER_IP: peer,
        VIP: `${VIP}/24`,
        SCRIPTS: scripts,
        // "nginx" answers 404 (any answer counts), the edge's /_edge/ready 200
        NGINX_URL: `http://127.0.0.1:${NGINX_PORT}/_edge/health`,
        READY_URL: `http://127.0.0.1:${EDGE_PORT}/_edge/ready`,
        MAINTENANCE_FILE: path.join(scripts, 'maintenance'),
        STATE_FILE: path.join(scripts, 'state'),
      }));
      const nginx = new StandIn(ns, NGINX_PORT, 404);
      const edge = new StandIn(ns, EDGE_PORT, 200);
      standIns.push(nginx, edge);
      await nginx.start();
      await edge.start();
      const ka = Keepalived.start(ns, conf, scripts);
      keepalived.push(ka);
      return { scripts, nginx, ka };
    };
    const sideA = await setUp(a, 'keepalived.conf', `${net}.1`, `${net}.2`);
    const sideB = await setUp(b, 'keepalived-backup.conf', `${net}.2`, `${net}.1`);
    ({ scripts: dirA, nginx: nginxA, ka: kaA } = sideA);
    ({ scripts: dirB, ka: kaB } = sideB);
  });

  after(async () => {
    await Promise.all(keepalived.map((k) => k.stop()));
    await Promise.all(standIns.map((s) => s.kill()));
    a?.delete();
    b?.delete();
    await removeDir(work);
  });

  test('the MASTER takes the virtual IP, the BACKUP does not', async (t) => {
    if (skipReason) return t.skip(skipReason);
    // keepalived starts every instance in BACKUP and takes over after the advert timeout (~3 s).
    const settled = await until(() => a!.has('eth0', VIP) && !b!.has('eth0', VIP), 15_000, 100);
    assert.ok(settled, `the VIP did not settle on A within 15 s (A: ${a!.addresses('eth0')}, B: ${b!.addresses('eth0')})\n${logs()}`);
    assert.ok(kaA.running && kaB.running, logs());
    // notify.sh ran inside keepalived: the state files say who is who.
    assert.ok(await until(() => existsSync(path.join(dirB, 'state')), 5000), logs());
    assert.equal(await state(dirA), 'MASTER');
    assert.equal(await state(dirB), 'BACKUP');
  });

  test('the master’s nginx dies: the virtual IP is on the BACKUP within 3 s, and gone from the master', async (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.ok(a!.has('eth0', VIP), 'precondition: A holds the VIP');
    // The worst moment to die: just after the track script got its answer, so a whole interval
    // passes before the first failing run (fall 2: FAULT ~2 s later, plus the peer's skew time).
    await nginxA.answered();
    await nginxA.kill();
    const died = performance.now();
    const moved = await until(() => b!.has('eth0', VIP), 10_000, 20);
    const elapsed = performance.now() - died;
    t.diagnostic(`failover: the VIP was on B ${Math.round(elapsed)} ms after A's nginx died`);
    assert.ok(moved, `the VIP never reached B\n${logs()}`);
    assert.ok(elapsed < 3000, `failover took ${Math.round(elapsed)} ms (limit 3000)\n${logs()}`);
    assert.ok(await until(() => !a!.has('eth0', VIP), 1000), `A still holds the VIP: ${a!.addresses('eth0')}`);
    assert.ok(await until(() => readIfExistsSync(path.join(dirB, 'state')).startsWith('MASTER'), 2000), logs());
    assert.equal(await state(dirA), 'FAULT');
    // notify.sh writes the state file first, then runs the notify.d hooks: the hook's line follows.
    const hookRan = await until(() => /INSTANCE IMGEDGE MASTER 200/.test(readIfExistsSync(path.join(dirB, 'transitions'))), 2000);
    assert.ok(hookRan, `the notify.d hook ran on B: ${JSON.stringify(readIfExistsSync(path.join(dirB, 'transitions')))}`);
  });

  test('nginx is back: the VIP returns to the MASTER (preemption), the BACKUP steps down', async (t) => {
    if (skipReason) return t.skip(skipReason);
    await nginxA.start();
    const back = performance.now();
    // rise 2 (~2 s), then A, BACKUP with the higher priority, waits out the advert timeout
    // (3 x advert_int + skew) and preempts.
    const returned = await until(() => a!.has('eth0', VIP) && !b!.has('eth0', VIP), 15_000, 50);
    t.diagnostic(`return: the VIP was back on A ${Math.round(performance.now() - back)} ms after nginx came back`);
    assert.ok(returned, `the VIP did not come back to A (A: ${a!.addresses('eth0')}, B: ${b!.addresses('eth0')})\n${logs()}`);
    assert.ok(await until(() => readIfExistsSync(path.join(dirB, 'state')).startsWith('BACKUP'), 3000), logs());
    assert.equal(await state(dirA), 'MASTER');
  });
});

function readIfExistsSync(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

describe('deploy/imgedge@.service', () => {
  for (const [file, instance] of [[UNIT, 'imgedge@8081.service'], [path.join(ROOT, 'deploy', 'imgedge-worker.service'), 'imgedge-worker.service']] as const) {
    test(`systemd-analyze verify finds nothing to say about ${path.basename(file)}`, async (t) => {
      const bin = which('systemd-analyze');
      // Not installed: skip (in a container too). Under CI the test runs only where the binary is.
      if (!bin) return t.skip('systemd-analyze is not installed (apt-get install -y systemd)');
      // A template is verified as one of its instances; verify also checks that ExecStart's program
      // exists, so it points at this node where /usr/bin/node is missing.
      const work = await tempDir('imgedge-unit-');
      const unit = path.join(work, instance);
      const text = await readFile(file, 'utf8');
      await writeFile(unit, existsSync('/usr/bin/node') ? text : text.replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `));
      try {
        const r = run(bin, ['verify', unit], { timeoutMs: 30_000 });
        const aboutUnit = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.includes(instance.replace(/@.*$/, '@')));
        assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
        assert.deepEqual(aboutUnit, [], 'no warning about the unit');
      } finally {
        await removeDir(work);
      }
    });
  }

  test('deploy/env.example and the config file of docs/OPERATIONS.md load with the edge’s own loader, as instance 8081 of the unit', async () => {
    const doc = await readFile(path.join(ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
    const json = /cat > \/etc\/imgedge\/config\.json <<'EOF'\n([\s\S]*?)\nEOF/.exec(doc)?.[1];
    assert.ok(json, 'docs/OPERATIONS.md writes /etc/imgedge/config.json');
    const unit = await readFile(UNIT, 'utf8');
    // What systemd gives instance 8081: the unit's Environment= lines, then the file's, which win.
    const env = {
      ...Object.fromEntries([...unit.replaceAll('%i', '8081').matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!])),
      ...Object.fromEntries(
        (await readFile(path.join(ROOT, 'deploy', 'env.example'), 'utf8'))
          .split('\n')
          .filter((line) => /^[A-Z_]+=/.test(line))
          .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
      ),
    };
    const config = parseConfig(JSON.parse(json), env, '/etc/imgedge');
    assert.equal(config.server.port, 8081, 'the instance name is the port');
    assert.equal(config.cache.dir, '/var/cache/imgedge/8081', 'its own folder, the one the unit may write');
    assert.ok(config.redis.url && config.purge.token, 'several nodes: Redis and a purge token');
    assert.equal(config.server.host, env.IMGEDGE_HOST);
    assert.match(unit, /^CacheDirectory=imgedge\/%i$/m);
    assert.match(unit, /^RequiresMountsFor=\/var\/cache\/imgedge$/m);
    assert.match(unit, new RegExp(`^Environment=UV_THREADPOOL_SIZE=${env.UV_THREADPOOL_SIZE}$`, 'm'), 'env.example and the unit agree');
    assert.match(unit, new RegExp(`^Environment=IMGEDGE_TRANSFORM_CONCURRENCY=${env.IMGEDGE_TRANSFORM_CONCURRENCY}$`, 'm'), 'env.example and the unit agree');
    // One process per core: 2 transforms each keeps the machine at 2 per core, what one process
    // alone runs; the pool holds them, one background encode and 4 threads for cache I/O.
    assert.equal(config.limits.transformConcurrency, 2);
    assert.equal(Number(env.UV_THREADPOOL_SIZE), config.limits.transformConcurrency + 1 + 4);
    // TimeoutStopSec leaves the graceful stop its time, with room to close Redis and the cache.
    const stopSec = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)?.[1]);
    assert.ok(stopSec * 1000 >= config.server.shutdownTimeoutMs + 10_000, `TimeoutStopSec=${stopSec}`);
  });

  test('the unit’s environment: jemalloc is loaded, the edge serves, and SIGTERM finishes an in-flight miss and its cache write', async (t) => {
    const unit = await readFile(UNIT, 'utf8');
    // The instance's own port and folder come from the test's config instead.
    const env = Object.fromEntries([...unit.matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)].filter((m) => m[1] !== 'IMGEDGE_PORT' && m[1] !== 'IMGEDGE_CACHE_DIR').map((m) => [m[1]!, m[2]!]));
    assert.equal(env.UV_THREADPOOL_SIZE, '7');
    assert.equal(env.IMGEDGE_TRANSFORM_CONCURRENCY, '2');
    assert.ok(env.LD_PRELOAD, 'the unit preloads jemalloc');
    if (!existsSync(env.LD_PRELOAD)) {
      const reason = `${env.LD_PRELOAD} is missing: apt-get install -y libjemalloc2`;
      if (process.env.CI === 'true') throw new Error(reason);
      return t.skip(reason);
    }
    const origin = await TestOrigin.start();
    const dir = await edgeTempDir('imgedge-unit-env-');
    try {
      origin.set('/slow.jpg', { body: await photoJpeg({ width: 300, height: 200 }), headers: { 'content-type': 'image/jpeg' }, delayMs: 800 });
      const config = { server: { host: '127.0.0.1', port: 0 }, cache: { dir }, log: { level: 'info' }, sites: [{ name: 'test', origin: origin.url }] };
      const node = await spawnEdge(config, dir, env);
      const maps = await readFile(`/proc/${node.child.pid}/maps`, 'utf8');
      assert.match(maps, /libjemalloc\.so\.2/, 'jemalloc is mapped into the edge process');
      assert.equal((await fetch(`${node.url}/_edge/ready`)).status, 200);
      const pending = fetch(`${node.url}/slow.jpg?w=120`);
      await sleep(200);
      const exited = node.stop('SIGTERM');
      const res = await pending;
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-cache'), 'MISS');
      await res.arrayBuffer();
      assert.equal(await exited, 0, 'a graceful stop exits 0');
      // The cache write of that miss was finished before the process exited: a new process hits.
      const again = await spawnEdge(config, dir, env);
      try {
        const hit = await fetch(`${again.url}/slow.jpg?w=120`);
        await hit.arrayBuffer();
        assert.equal(hit.headers.get('x-cache'), 'HIT');
        assert.equal(origin.count('/slow.jpg'), 1, 'no second origin fetch');
      } finally {
        await again.stop();
      }
    } finally {
      await origin.close();
      await removeEdgeDir(dir);
    }
  });
});
