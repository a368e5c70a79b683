// Probes for the data-path faults (reset, timeout, slow-close, http, dns): what
// curl inside a container saw.
import Docker from 'dockerode';
import type { StartedTestContainer } from 'testcontainers';
import { queueChainsIn, redirectChainsIn, sandboxOf } from '../../src/targets/queue-rules.js';
import { releaseIdle } from '../../src/targets/release-idle.js';
import { sh } from './containers.js';

export interface CurlResult {
  /** curl's exit code: 0 ok, 28 timeout, 52 empty reply, 56 recv failure (reset), 18 partial body. */
  exit: number;
  /** HTTP status, 0 when none arrived. */
  status: number;
  /** Bytes curl sent (request) and received (headers, body). */
  sentBytes: number;
  headerBytes: number;
  bodyBytes: number;
  ms: number;
  body: string;
}

const FORMAT = '\\n%{exitcode} %{http_code} %{size_request} %{size_header} %{size_download} %{time_total}';

/** n sequential curls (each a new connection) from inside the container; bodies kept up to 4 KiB. */
export async function curlRuns(c: StartedTestContainer, url: string, n = 1, args = '--max-time 5'): Promise<CurlResult[]> {
  const script =
    `for i in $(seq ${n}); do curl -s ${args} -w '${FORMAT}' -o /tmp/body '${url}' > /tmp/w; ` +
    `head -c 4096 /tmp/body 2>/dev/null | base64 -w0; echo -n '|'; tail -n1 /tmp/w; echo; rm -f /tmp/body; done`;
  const { output, exitCode } = await sh(c, script);
  if (exitCode !== 0) throw new Error(`curl loop failed (${exitCode}): ${output}`);
  return output
    .split('\n')
    .filter((l) => l.includes('|'))
    .map((l) => {
      const [b64, w] = l.split('|') as [string, string];
      const [exit, status, sent, header, body, t] = w.trim().split(' ').map(Number) as number[];
      return {
        exit: exit!,
        status: status!,
        sentBytes: sent!,
        headerBytes: header!,
        bodyBytes: body!,
        ms: t! * 1000,
        body: Buffer.from(b64, 'base64').toString('utf8'),
      };
    });
}

export async function curlOnce(c: StartedTestContainer, url: string, args?: string): Promise<CurlResult> {
  return (await curlRuns(c, url, 1, args))[0]!;
}

/**
 * The packet path's and inbound proxies' iptables chains in the container's netns
 * (IPv6 ones as ip6:VC-...), sorted. The kept slot rules of a netns with no fault in
 * force are deleted first, as at the end of a test file, so "none" after a revert means
 * nothing of ours is left there.
 */
export async function ourChainsOf(c: StartedTestContainer, tables: 'queue' | 'queue+nat' = 'queue'): Promise<string[]> {
  await releaseIdle();
  const docker = new Docker();
  const info = await docker.getContainer(c.getId()).inspect();
  const netns = await sandboxOf(docker, c.getId(), info.State.Pid);
  if (!netns) return ['(no netns)'];
  return [...(tables === 'queue+nat' ? await redirectChainsIn(netns) : []), ...(await queueChainsIn(netns))].sort();
}
