// A separate process that injects faults and then waits to be killed; used to
// show that SIGKILL leaves nothing behind.
// argv: <kind> <containerId> <params as JSON>, or
//       sequence <containerId> <[{ kind, ...params }, ...] as JSON>: injected one after the other.
import { createChaos, type FaultSpec } from '../../src/index.js';

const [kind, target, json] = process.argv.slice(2);
const chaos = createChaos({ seed: 1 });
const specs: FaultSpec[] =
  kind === 'sequence'
    ? (JSON.parse(json!) as Record<string, unknown>[]).map((s) => ({ ...s, target: target! }) as FaultSpec)
    : [{ kind, target: target!, ...JSON.parse(json!) } as FaultSpec];
const faults = [];
for (const spec of specs) faults.push(await chaos.inject(spec));
process.stdout.write(`READY ${JSON.stringify(faults.length === 1 ? faults[0]!.toJSON() : faults.map((f) => f.toJSON()))}\n`);
setInterval(() => {}, 1000);
