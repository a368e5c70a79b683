// Runs in every test worker before each test file (added by the plugin).
import { afterAll, expect, inject } from 'vitest';
import { configureChaos } from './default-chaos.js';
import { chaosMatchers } from './matchers.js';

expect.extend(chaosMatchers);

const provided = inject('vitestChaos');
const instance = configureChaos(provided ?? {});

// Faults injected outside a test (beforeAll, module scope) end with the file.
afterAll(() => instance.revertAll());
