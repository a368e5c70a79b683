// Run by test/integration/kill-switch.test.ts: injects VC_FAULTS, says so in
// VC_SYNC/<VC_NAME>.ready, then holds them. Each time <name>.try-<n> appears
// it tries to inject VC_PROBE (and reverts it) and writes what happened to
// <name>.result-<n>; <name>.done ends it.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { it } from 'vitest';
import { chaos, type FaultSpec } from 'vitest-chaos';

const dir = process.env.VC_SYNC as string;
const name = process.env.VC_NAME as string;
const at = (f: string) => join(dir, `${name}.${f}`);

it('holds faults until told to stop', { timeout: 120_000 }, async () => {
  const faults = [];
  for (const spec of JSON.parse(process.env.VC_FAULTS as string) as FaultSpec[]) faults.push(await chaos.inject(spec));
  writeFileSync(at('ready'), JSON.stringify({ pid: process.pid, faults: faults.map((f) => f.toJSON()) }));
  for (let n = 1; !existsSync(at('done')); ) {
    if (existsSync(at(`try-${n}`))) {
      let result: string;
      try {
        const f = await chaos.inject(JSON.parse(process.env.VC_PROBE as string) as FaultSpec);
        await f.revert();
        result = `injected ${f}`;
      } catch (err) {
        result = `refused: ${(err as Error).message}`;
      }
      writeFileSync(at(`result-${n}`), JSON.stringify({ result, active: chaos.activeFaults().map(String) }));
      n++;
    }
    await sleep(20);
  }
});
