// A separate process that injects faults and then blocks its event loop for
// good (a stuck run: it answers no socket and runs no signal handler).
// argv: <json array of fault specs>
import { writeSync } from 'node:fs';
import { createChaos, type FaultSpec } from '../../src/index.js';

const chaos = createChaos({ seed: 1, progress: false });
const faults = [];
for (const spec of JSON.parse(process.argv[2] as string) as FaultSpec[]) faults.push(await chaos.inject(spec));
writeSync(1, `READY ${JSON.stringify(faults.map((f) => f.toJSON()))}\n`);
for (;;) {
  // stuck
}
