// A separate process that injects faults and then waits to be killed; used to
// show that SIGKILL leaves nothing behind. argv: <kind> <containerId>
import { createChaos } from '../../src/index.js';

const [kind, target] = process.argv.slice(2);
const chaos = createChaos({ seed: 1 });
const fault =
  kind === 'network-latency'
    ? await chaos.inject({ kind: 'network-latency', target: target!, latencyMs: 300 })
    : await chaos.inject({ kind: 'network-loss', target: target!, percent: 100 });
process.stdout.write(`READY ${JSON.stringify(fault.toJSON())}\n`);
setInterval(() => {}, 1000);
