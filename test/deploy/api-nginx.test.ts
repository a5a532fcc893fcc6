/**
 * nginx/imgedge-api.conf with a real nginx in front of two API processes: Kraken's client talks
 * to nginx, optimizations spread over both processes, and every kraked_url (the prefix of the
 * process that holds it) downloads through nginx from the right one.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { removeDir, tempDir } from '../helpers/edge.js';
import { apiConfig, krakenClient, startApi, type RunningApi } from '../helpers/api.js';
import { photoJpeg } from '../helpers/images.js';
import { loadRenderer, makeTestCert, nginxMissing, nginxTest, renderNginx, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { freePort } from '../helpers/processes.js';

describe('nginx in front of two API processes', () => {
  let dir: string;
  let apis: RunningApi[] = [];
  let nginx: RunningNginx | undefined;
  let conf: string;
  let base: string;

  before(async () => {
    if (nginxMissing()) return;
    dir = await tempDir('imgedge-api-nginx-');
    const cert = await makeTestCert(dir);
    const [listen, tlsListen, a, b] = [await freePort(), await freePort(), await freePort(), await freePort()];
    base = `http://127.0.0.1:${listen}`;
    for (const port of [a, b]) {
      const node = `127.0.0.1:${port}`;
      apis.push(await startApi(apiConfig(path.join(dir, `cache-${port}`), { port, publicUrl: `${base}/n/${node}` })));
    }
    const { renderApiConf } = await loadRenderer();
    const rendered = renderApiConf({
      API_NODES: `127.0.0.1:${a},127.0.0.1:${b}`,
      API_HTTP_LISTEN: [`127.0.0.1:${listen}`],
      API_HTTPS_LISTEN: [`127.0.0.1:${tlsListen}`],
      API_SERVER_NAMES: ['localhost'],
      API_TLS_CERT: cert!.certFile,
      API_TLS_KEY: cert!.keyFile,
      API_ACCESS_LOG: path.join(dir, 'nginx', 'logs', 'api.log'),
    });
    conf = await renderNginx({ nodes: [], listenPort: listen, tlsPort: tlsListen, certFile: cert!.certFile, keyFile: cert!.keyFile, allowNets: [], prefix: path.join(dir, 'nginx'), imgedgeConf: rendered });
    nginx = await startNginx(conf, listen);
  });

  after(async () => {
    await nginx?.stop();
    for (const api of apis) await api.close();
    if (dir) await removeDir(dir);
  });

  it('the rendered config passes nginx -t', async (t) => {
    if (nginxMissing()) return t.skip(nginxMissing());
    const result = await nginxTest(conf);
    assert.ok(result?.ok, result?.output);
  });

  it('optimizes through nginx on both processes, and each download comes back from its own', async (t) => {
    if (nginxMissing()) return t.skip(nginxMissing());
    const photo = await photoJpeg({ width: 300, height: 200 });
    const client = krakenClient(base);
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => client.upload({ file: { value: photo, filename: `p${i}.jpg` }, wait: true, lossy: true })));
    const prefixes = new Set<string>();
    for (const r of answers) {
      assert.equal(r.success, true, JSON.stringify(r));
      const url = r.kraked_url as string;
      assert.ok(url.startsWith(`${base}/n/`), url);
      prefixes.add(new URL(url).pathname.split('/')[2]!);
      const res = await fetch(url);
      assert.equal(res.status, 200, url);
      assert.equal(Buffer.from(await res.arrayBuffer()).length, r.kraked_size);
    }
    assert.equal(prefixes.size, 2, `both processes optimized: ${[...prefixes].join(', ')}`);
  });
});
