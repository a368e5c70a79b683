// Helpers of the process-fault tests: container state straight from Docker,
// detached execs with their exit codes, HTTP from the host with timings, and
// processes of a container found through its cgroup.
import Docker from 'dockerode';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import type { StartedTestContainer } from 'testcontainers';
import { processesOf, type ContainerProcess } from '../../src/targets/cgroup-processes.js';
import { TargetResolver } from '../../src/targets/resolve-target.js';
import { IMAGES, testLabels } from './containers.js';

export const docker = new Docker();

type Ref = StartedTestContainer | string;
const idOf = (c: Ref) => (typeof c === 'string' ? c : c.getId());

export async function state(c: Ref): Promise<Docker.ContainerInspectInfo['State']> {
  return (await docker.getContainer(idOf(c)).inspect()).State;
}

/** The container's address now: it may change when it is started again. */
export async function currentIp(c: Ref): Promise<string> {
  const nets = (await docker.getContainer(idOf(c)).inspect()).NetworkSettings.Networks;
  const ip = Object.values(nets ?? {})[0]?.IPAddress;
  if (!ip) throw new Error(`${idOf(c)} has no IP address`);
  return ip;
}

/** A container started with dockerode (init, stop signal, command of our choosing), labelled as Testcontainers' own. */
export async function startRaw(
  name: string,
  opts: { image?: string; cmd?: string[]; init?: boolean; stopSignal?: string },
): Promise<string> {
  const c = await docker.createContainer({
    Image: opts.image ?? IMAGES.client,
    Cmd: opts.cmd,
    StopSignal: opts.stopSignal,
    Labels: { ...testLabels(name), 'org.testcontainers': 'true' },
    HostConfig: { Init: opts.init ?? false },
  });
  await c.start();
  return c.id;
}

export async function removeQuietly(...cs: (Ref | undefined)[]): Promise<void> {
  await Promise.allSettled(cs.filter(Boolean).map((c) => docker.getContainer(idOf(c!)).remove({ force: true })));
}

/** Starts a command in the container without waiting; returns the exec to ask for its exit code. */
export async function execDetached(c: Ref, cmd: string[]): Promise<Docker.Exec> {
  const exec = await docker.getContainer(idOf(c)).exec({ Cmd: cmd });
  await exec.start({ Detach: true });
  return exec;
}

/** Waits (bounded) until the exec ended; its exit code, or null if it still runs. */
export async function execExitCode(exec: Docker.Exec, waitMs = 3000): Promise<number | null> {
  const end = Date.now() + waitMs;
  for (;;) {
    const i = await exec.inspect();
    if (!i.Running) return i.ExitCode;
    if (Date.now() > end) return null;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The parent pid of a host pid (/proc/<pid>/stat, after the command name), or null once it is gone. */
export function parentPid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** Polls until check() holds or timeoutMs passed; returns whether it held. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 5000, stepMs = 25): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export interface HttpResult {
  status: number | null;
  body: string;
  ms: number;
  error?: string;
}

/** One GET on a new connection, bounded by timeoutMs; never throws. */
export function httpGet(url: string, timeoutMs = 2000): Promise<HttpResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? null, body, ms: performance.now() - t0 }));
      res.on('error', (e) => resolve({ status: null, body, ms: performance.now() - t0, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ status: null, body: '', ms: performance.now() - t0, error: e.message }));
  });
}

/** Waits until `url` answers 200 (a server starting), bounded. */
export async function answersOk(url: string, timeoutMs = 10_000, stepMs = 100): Promise<boolean> {
  return eventually(async () => (await httpGet(url, 500)).status === 200, timeoutMs, stepMs);
}

/** Waits until the fixture server at ip answers (after a start), bounded. */
export async function serverAnswers(ip: string, timeoutMs = 10_000): Promise<boolean> {
  return answersOk(`http://${ip}:8080/`, timeoutMs);
}

const resolver = new TargetResolver();

/** The container's processes now, from its cgroup (host pids). */
export async function processesIn(c: Ref): Promise<ContainerProcess[]> {
  resolver.forget(idOf(c));
  return processesOf((await resolver.resolve(idOf(c))).cgroup.directory);
}

/** Links to the crash-on-syscall program that process pid holds, read from its fds (not from our bookkeeping). */
export function sysEnterLinks(pid = process.pid): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:bpf_link') continue;
      const progId = /prog_id:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1];
      if (!progId) continue;
      const prog = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'id', progId], { encoding: 'utf8' })) as { name?: string };
      if (prog.name === 'vc_syscall_sig') n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}
