// The soak's short version (npm run soak runs four workers for 60 s): one
// worker, a few seconds of 50 inject/revert cycles a second across random kinds.
import { describe } from 'vitest';
import { soakWorker } from '../helpers/soak.js';

describe('soak (short)', () => {
  soakWorker({ worker: 0, seconds: Number(process.env.VITEST_CHAOS_SOAK_SECONDS ?? 4) });
});
