/** API keys given by their secret's SHA-256 (kept out of config files) work as keys given in clear. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ApiKeys } from '../../src/api/keys.js';
import { EdgeError } from '../../src/errors.js';

const SECRET = 'a-long-random-secret-0123456789';
const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');

describe('API keys', () => {
  const keys = new ApiKeys([
    { key: 'hashed-key-01', secretSha256: sha256hex(SECRET), quotaBytes: 1000 },
    { key: 'clear-key-001', secret: SECRET },
  ]);

  it('authenticates a key configured by its hash with the secret itself, and refuses anything else', () => {
    assert.equal(keys.authenticate({ api_key: 'hashed-key-01', api_secret: SECRET }).quotaBytes, 1000);
    for (const auth of [{ api_key: 'hashed-key-01', api_secret: sha256hex(SECRET) }, { api_key: 'hashed-key-01', api_secret: `${SECRET}x` }, { api_key: 'nobody-000001', api_secret: SECRET }, {}, undefined]) {
      assert.throws(() => keys.authenticate(auth), (err: unknown) => err instanceof EdgeError && err.code === 'EDGE_UNAUTHORIZED', JSON.stringify(auth));
    }
  });

  it('signs webhooks with the secret given in clear, or with the hash\'s hex for a hashed key', () => {
    assert.equal(keys.signingSecret('clear-key-001'), SECRET);
    assert.equal(keys.signingSecret('hashed-key-01'), sha256hex(SECRET));
    assert.equal(keys.signingSecret('nobody-000001'), undefined);
  });
});
