// The preflight on this machine, for real: a rootful engine on this kernel, BTF, root.
import { release } from 'node:os';
import Docker from 'dockerode';
import { expect, it } from 'vitest';
import { checkEngine, engineFacts, preflight } from '../../src/api/preflight.js';

it('reads the engine and the kernel, and finds nothing in the way here', async () => {
  const d = new Docker();
  await d.ping();
  const facts = await engineFacts(d);
  console.info(`engine: ${JSON.stringify(facts)}; this kernel ${release()}`);
  expect(facts.kernelVersion).toBe(release());
  expect(facts.securityOptions?.some((o) => o.includes('rootless'))).toBe(false);
  expect(checkEngine(facts, { platform: process.platform, kernelRelease: release() })).toBeNull();
  const r = await preflight();
  expect(r.problems).toEqual([]);
  expect(r.kindsUnavailable).toEqual({});
  expect(r.ok).toBe(true);
});
