// One of the soak's four workers (soak/vitest.config.ts runs them at once).
import { describe } from 'vitest';
import { soakWorker } from '../test/helpers/soak.js';

describe('soak', () => {
  soakWorker({ worker: 4, seconds: Number(process.env.VITEST_CHAOS_SOAK_SECONDS ?? 60) });
});
