import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMetrics } from '../../src/metrics/registry.js';

describe('metrics registry', () => {
  test('domsec_redis_up is absent until Redis reports a state, then 1 or 0', async () => {
    const m = createMetrics();
    const text = () => m.registry.metrics();
    // Without Redis nothing sets it: absent, not 0 ("down") as an unlabelled gauge would be.
    assert.doesNotMatch(await text(), /domsec_redis_up/);
    m.redisUp.set(0);
    assert.match(await text(), /^domsec_redis_up 0$/m);
    m.redisUp.set(1);
    const after = await text();
    assert.match(after, /^domsec_redis_up 1$/m);
    assert.equal(after.match(/^# TYPE domsec_redis_up gauge$/gm)?.length, 1);
  });

  test('two registries (two services in one process) keep their own Redis state', async () => {
    const [a, b] = [createMetrics(), createMetrics()];
    a.redisUp.set(1);
    assert.match(await a.registry.metrics(), /^domsec_redis_up 1$/m);
    assert.doesNotMatch(await b.registry.metrics(), /domsec_redis_up/);
  });
});
