// The journal's undo for the packet path's and the inbound proxy's iptables
// chains (iptables-chain-del, IPv4 or with family 6 the IPv6 tables): what the schema admits, and what the guard does
// with an entry read back from disk (a dead run's), before anything is run.
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { checkUndo, UndoRefused } from '../../src/journal/undo-guard.js';
import { undoActionSchema, type UndoAction } from '../../src/journal/undo-schema.js';

const NETNS = '/var/run/docker/netns/0123456789ab';
const ID = 'c'.repeat(64);
const action = (chain: string, netns = NETNS, extra: Record<string, unknown> = {}) => ({
  type: 'iptables-chain-del',
  containerId: ID,
  netns,
  chain,
  ...extra,
});

/** A Docker client that knows one container (or none): only inspect() is asked for. */
function dockerWith(info: { labels?: Record<string, string>; running?: boolean; sandbox?: string } | null): Docker {
  return {
    getContainer: () => ({
      inspect: async () => {
        if (!info) throw Object.assign(new Error('no such container'), { statusCode: 404 });
        return {
          Name: '/target',
          Config: { Labels: info.labels ?? {} },
          State: { Running: info.running ?? true },
          NetworkSettings: { SandboxKey: info.sandbox ?? NETNS },
        };
      },
    }),
  } as unknown as Docker;
}

describe('iptables-chain-del', () => {
  it('admits only our chains in a Docker netns', () => {
    for (const chain of ['VC-Q1000-O', 'VC-Q7-I', 'VC-H34861-P']) expect(undoActionSchema.safeParse(action(chain)).success).toBe(true);
    for (const chain of ['OUTPUT', 'PREROUTING', 'DOCKER-USER', 'VC-Q1-P', 'VC-H1-O', 'VC-Q123456-O', 'VC-H1-P; rm -rf /', '']) {
      expect(undoActionSchema.safeParse(action(chain)).success, chain).toBe(false);
    }
    for (const netns of ['/proc/1/ns/net', '/var/run/docker/netns/../../x', '/run/netns/default', '']) {
      expect(undoActionSchema.safeParse(action('VC-Q1-O', netns)).success, netns).toBe(false);
    }
  });

  it('admits the IPv6 tables as family 6 (absent: IPv4), nothing else', () => {
    expect(undoActionSchema.parse(action('VC-Q1000-O', NETNS, { family: 6 }))).toMatchObject({ chain: 'VC-Q1000-O', family: 6 });
    expect(undoActionSchema.parse(action('VC-H40000-P', NETNS, { family: 6 }))).toMatchObject({ family: 6 });
    expect(undoActionSchema.parse(action('VC-Q1000-I'))).not.toHaveProperty('family');
    for (const family of [4, '6', 0, 46, null, 'ip6; rm -rf /']) {
      expect(undoActionSchema.safeParse(action('VC-Q1000-O', NETNS, { family })).success, String(family)).toBe(false);
    }
    expect(undoActionSchema.safeParse(action('VC-Q1000-O', NETNS, { family: 6, table: 'filter' })).success).toBe(false);
  });

  it("treats a dead run's IPv6 entry like the IPv4 one: run while the sandbox lives, skipped once gone, refused if not ours", async () => {
    const v6 = undoActionSchema.parse(action('VC-Q1000-O', NETNS, { family: 6 })) as UndoAction;
    const labels = { 'vitest-chaos.run': '123' };
    expect((await checkUndo(v6, 0, dockerWith({ labels }), true)).gone).toBe(false);
    expect((await checkUndo(v6, 0, dockerWith({ labels, running: false }), true)).gone).toBe(true);
    await expect(checkUndo(v6, 0, dockerWith({ labels: {} }), true)).rejects.toBeInstanceOf(UndoRefused);
  });

  const parsed = (chain: string) => undoActionSchema.parse(action(chain)) as UndoAction;

  it('runs an entry of this run without asking Docker', async () => {
    const r = await checkUndo(parsed('VC-H40000-P'), 0, dockerWith(null), false);
    expect(r.gone).toBe(false);
  });

  it("refuses a dead run's entry for a container no run of ours started", async () => {
    await expect(checkUndo(parsed('VC-Q1000-O'), 0, dockerWith({ labels: {} }), true)).rejects.toBeInstanceOf(UndoRefused);
  });

  it("runs a dead run's entry while the container runs in the same netns; skips it once the netns is gone", async () => {
    const labels = { 'vitest-chaos.run': '123' };
    expect((await checkUndo(parsed('VC-H40000-P'), 0, dockerWith({ labels }), true)).gone).toBe(false);
    expect((await checkUndo(parsed('VC-H40000-P'), 0, dockerWith({ labels, running: false }), true)).gone).toBe(true);
    expect(
      (await checkUndo(parsed('VC-Q1000-I'), 0, dockerWith({ labels, sandbox: '/var/run/docker/netns/ffffffffffff' }), true)).gone,
    ).toBe(true);
    expect((await checkUndo(parsed('VC-Q1000-O'), 0, dockerWith(null), true)).gone).toBe(true);
  });
});
