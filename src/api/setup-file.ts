// Runs in every test worker before each test file (added by the plugin).
import { afterAll, expect, inject } from 'vitest';
import { closeReleasedProxies } from '../datapath/tcp-proxy.js';
import { releaseIdle } from '../targets/release-idle.js';
import { configureChaos } from './default-chaos.js';
import { chaosMatchers } from './matchers.js';
import { onParentGone } from './parent-watch.js';

expect.extend(chaosMatchers);

const provided = inject('vitestChaos');
const instance = configureChaos(provided ?? {});

// A worker whose Vitest main process died reverts at once, not when its test times out.
const unwatch = onParentGone(() => instance.revertAll());

// Faults injected outside a test (beforeAll, module scope) end with the file, and so do
// the connections reverted proxied faults handed back and still relay, and the packet
// path's kept rules (nothing of ours outlives the file that made it).
afterAll(async () => {
  try {
    await instance.revertAll();
  } finally {
    unwatch();
    await closeReleasedProxies();
    await releaseIdle();
  }
});
