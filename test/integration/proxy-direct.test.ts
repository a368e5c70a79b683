// The proxy listens on the bridge's gateway, where every container on the
// bridge can reach it: a connection our programs did not redirect gets
// nothing (closed at once, no byte relayed) and is counted.
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { ipOf, sh, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { gatewayOf, listeningPorts } from '../helpers/target-info.js';

describe('the proxy, reached directly', () => {
  let server: StartedTestContainer;
  let target: StartedTestContainer;
  let other: StartedTestContainer;
  beforeAll(async () => {
    [server, target, other] = await Promise.all([
      startHttpServer('direct-server'),
      startClient('direct-target'),
      startClient('direct-other'),
    ]);
  });
  afterAll(() => stopAll(server, target, other));

  it('gives a container that connects to its port directly nothing, and counts it in unknownConnections', async () => {
    const gateway = await gatewayOf(target);
    const before = listeningPorts(gateway);
    const fault = await chaos.inject({ kind: 'network-latency', target, latencyMs: 50 });
    const [port] = listeningPorts(gateway).filter((p) => !before.includes(p));
    expect(port).toBeGreaterThan(0);
    // The redirected path works: the target's request goes through the proxy.
    const through = await sh(target, `curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://${ipOf(server)}:8080/`);
    // Another container on the bridge, straight to the proxy's port: an HTTP request and raw bytes.
    const direct = await sh(other, `curl -s -w '%{http_code}' --max-time 5 http://${gateway}:${port}/; echo " exit=$?"`);
    const raw = await sh(
      other,
      `exec 3<>/dev/tcp/${gateway}/${port}; (printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' >&3) 2>/dev/null; timeout 3 cat <&3 2>/dev/null | wc -c`,
    );
    const stats = fault.stats();
    await fault.revert();
    console.log(
      `proxy direct: curl "${direct.output.trim()}", raw bytes back ${raw.output.trim()}, stats connections=${stats.connections} unknownConnections=${stats.unknownConnections}`,
    );
    expect(through.output).toBe('200');
    expect(direct.output.trim()).toMatch(/^000 exit=(52|56)$/); // empty reply or reset: nothing came back
    expect(raw.output.trim()).toBe('0');
    expect(stats.unknownConnections).toBe(2);
    expect(stats.connections).toBe(1);
    expect(stats.bytesDown).toBeGreaterThan(0); // only the redirected request's answer
  });
});
