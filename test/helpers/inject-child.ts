// A separate process that injects faults and then waits to be killed; used to
// show that SIGKILL leaves nothing behind. argv: <kind> <containerId> [params as JSON]
import { createChaos, type FaultSpec } from '../../src/index.js';

const [kind, target, json] = process.argv.slice(2);
const chaos = createChaos({ seed: 1 });
const fault = json
  ? await chaos.inject({ kind, target: target!, ...JSON.parse(json) } as FaultSpec)
  : kind === 'network-latency'
    ? await chaos.inject({ kind: 'network-latency', target: target!, latencyMs: 300 })
    : await chaos.inject({ kind: 'network-loss', target: target!, percent: 100 });
process.stdout.write(`READY ${JSON.stringify(fault.toJSON())}\n`);
setInterval(() => {}, 1000);
