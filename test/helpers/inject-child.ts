// A separate process that injects faults and then waits to be killed; used to
// show that SIGKILL leaves nothing behind. A line "revert" on its stdin reverts
// its faults and answers "REVERTED" (two runs injecting into one container).
// argv: <kind> <containerId> [params as JSON], or
//       sequence <containerId> <[{ kind, ...params }, ...] as JSON>: injected one after the other.
import { createChaos, type FaultSpec } from '../../src/index.js';

const [kind, target, json] = process.argv.slice(2);
const chaos = createChaos({ seed: 1 });
const specs: FaultSpec[] =
  kind === 'sequence'
    ? (JSON.parse(json!) as Record<string, unknown>[]).map((s) => ({ ...s, target: target! }) as FaultSpec)
    : json
      ? [{ kind, target: target!, ...JSON.parse(json) } as FaultSpec]
      : kind === 'network-latency'
        ? [{ kind: 'network-latency', target: target!, latencyMs: 300 }]
        : [{ kind: 'network-loss', target: target!, percent: 100 }];
const faults: Awaited<ReturnType<typeof chaos.inject>>[] = [];
for (const spec of specs) faults.push(await chaos.inject(spec));
process.stdout.write(`READY ${JSON.stringify(faults.length === 1 ? faults[0]!.toJSON() : faults.map((f) => f.toJSON()))}\n`);
setInterval(() => {}, 1000);
process.stdin.setEncoding('utf8');
process.stdin.on('data', async (text: string) => {
  if (!text.includes('revert')) return;
  for (const f of faults) await f.revert();
  process.stdout.write('REVERTED\n');
});
