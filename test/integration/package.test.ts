// The package as a team gets it: `npm pack`, then a fresh project in /tmp installs the tarball
// with --ignore-scripts and a PATH that has no compiler, make, clang or bpftool, and runs its
// own chaos test (the plugin in vitest.config, network-loss on a real container, measured;
// the next test starts with the fault gone), under the newest vitest 4.0.x, the newest 4, and
// the lowest versions of both peer ranges.
// Installed projects are cached per version in .cache/pack-test/ (hard-linked into the fresh
// one), so a second run only replaces vitest-chaos itself.
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/**
 * The newest 4.0.x (the line whose nested-runner bug this guards) and the newest 4, then the
 * lowest of both peer ranges together.
 */
const PROJECTS = [
  { vitest: '4.0.18', testcontainers: '11.9.0' },
  { vitest: '4.1.12', testcontainers: '11.9.0' },
  { vitest: '3.2.0', testcontainers: '10.0.1' },
];
const CACHE = join(ROOT, '.cache', 'pack-test');
const NPM_CLI = join(process.execPath, '..', '..', 'lib', 'node_modules', 'npm', 'bin');

interface PackFile {
  path: string;
  size: number;
}
let tarball: string;
let bin: string;
let packed: string[] = [];
const temps: string[] = [];

function tempDir(prefix: string): string {
  const d = mkdtempSync(join('/tmp', prefix));
  temps.push(d);
  return d;
}

/** A PATH holding node, npm and npx only. */
function bareBin(): string {
  const d = tempDir('vc-bin-');
  symlinkSync(process.execPath, join(d, 'node'));
  symlinkSync(join(NPM_CLI, 'npm-cli.js'), join(d, 'npm'));
  symlinkSync(join(NPM_CLI, 'npx-cli.js'), join(d, 'npx'));
  return d;
}

function bareEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const keep = ['HOME', 'DOCKER_HOST', 'VITEST_CHAOS_JOURNAL_DIR'];
  const env: NodeJS.ProcessEnv = { PATH: bin, NO_COLOR: '1', TESTCONTAINERS_RYUK_DISABLED: 'true', ...extra };
  for (const k of keep) if (process.env[k]) env[k] = process.env[k];
  return env;
}

/** Hard-links a cached tree (npm replaces packages by rename, never writes into their files). */
function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const [src, dst] = [join(from, e.name), join(to, e.name)];
    if (e.isDirectory()) linkTree(src, dst);
    else if (e.isSymbolicLink()) cpSync(src, dst, { verbatimSymlinks: true });
    else linkSync(src, dst);
  }
}

async function npm(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run(join(bin, 'npm'), args, { cwd, env: bareEnv(), timeout: 240_000, maxBuffer: 64 << 20 });
  return stdout;
}

/** A fresh user project in /tmp with vitest@version, testcontainers and the tarball installed. */
async function userProject(version: string, testcontainers: string): Promise<string> {
  const dir = tempDir(`vc-user-vitest-${version}-`);
  const cached = join(CACHE, `vitest-${version}-testcontainers-${testcontainers}`);
  const manifest = { name: 'user-project', private: true, type: 'module', devDependencies: { testcontainers, vitest: version } };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  const fromCache = existsSync(join(cached, 'node_modules', '.package-lock.json'));
  if (fromCache) {
    linkTree(join(cached, 'node_modules'), join(dir, 'node_modules'));
    // npm rewrites these two in place: real copies, so the cache stays as it was
    for (const f of ['node_modules/.package-lock.json']) {
      unlinkSync(join(dir, f));
      cpSync(join(cached, f), join(dir, f));
    }
    cpSync(join(cached, 'package-lock.json'), join(dir, 'package-lock.json'));
  }
  const t0 = performance.now();
  await npm(dir, ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', '--save-dev', tarball]);
  console.info(
    `vitest ${version}: npm install --ignore-scripts of the tarball took ${((performance.now() - t0) / 1000).toFixed(1)} s (${fromCache ? 'over the cached project' : 'first time: every package'})`,
  );
  if (!fromCache) {
    const tmp = `${cached}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    linkTree(join(dir, 'node_modules'), join(tmp, 'node_modules'));
    for (const f of ['node_modules/.package-lock.json']) {
      unlinkSync(join(tmp, f));
      cpSync(join(dir, f), join(tmp, f));
    }
    cpSync(join(dir, 'package-lock.json'), join(tmp, 'package-lock.json'));
    rmSync(cached, { recursive: true, force: true });
    renameSync(tmp, cached);
  }
  cpSync(join(ROOT, 'test', 'user-project', 'vitest.config.ts'), join(dir, 'vitest.config.ts'));
  cpSync(join(ROOT, 'test', 'user-project', 'user-chaos.ts'), join(dir, 'chaos.test.ts'));
  return dir;
}

/** Every package.json of `name` under node_modules (nested copies included). */
function copiesOf(dir: string, name: string): string[] {
  const out: string[] = [];
  const walk = (nm: string) => {
    if (!existsSync(nm)) return;
    for (const e of readdirSync(nm)) {
      const pkgs = e.startsWith('@') ? readdirSync(join(nm, e)).map((s) => `${e}/${s}`) : [e];
      for (const p of pkgs) {
        const at = join(nm, p);
        if (p === name) out.push(at);
        walk(join(at, 'node_modules'));
      }
    }
  };
  walk(join(dir, 'node_modules'));
  return out;
}

beforeAll(async () => {
  bin = bareBin();
  // The PATH the installs and runs get: no compiler, no make, no clang, no bpftool.
  for (const tool of ['clang', 'bpftool', 'make', 'cc', 'gcc', 'g++', 'python3']) {
    expect(
      bin.split(delimiter).some((d) => existsSync(join(d, tool))),
      tool,
    ).toBe(false);
  }
  const dest = tempDir('vc-pack-');
  const t0 = performance.now();
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dest], { cwd: ROOT, timeout: 300_000, maxBuffer: 64 << 20 });
  const [info] = JSON.parse(stdout) as { filename: string; size: number; unpackedSize: number; files: PackFile[] }[];
  tarball = join(dest, info!.filename);
  const files = info!.files;
  console.info(
    `npm pack: ${info!.filename}, ${info!.size} bytes packed, ${info!.unpackedSize} unpacked, ${files.length} files, ` +
      `in ${((performance.now() - t0) / 1000).toFixed(1)} s:\n` +
      files.map((f) => `  ${String(f.size).padStart(8)}  ${f.path}`).join('\n'),
  );
  packed = files.map((f) => f.path);
}, 360_000);

afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

it('packs built JavaScript and types, the CO-RE objects, the linux-x64 N-API addon, and no sources it does not need', () => {
  expect(packed).toContain('dist/index.js');
  expect(packed).toContain('dist/index.d.ts');
  expect(packed).toContain('dist/plugin.js');
  expect(packed).toContain('dist/api/setup-file.js');
  expect(packed.filter((p) => /^bpf\/[\w-]+\.bpf\.o$/.test(p)).sort()).toEqual(
    ['conn-limit', 'connect', 'dns', 'observe', 'packet-drop', 'queue-match', 'syscall-signal', 'veth'].map((o) => `bpf/${o}.bpf.o`),
  );
  expect(packed.filter((p) => p.startsWith('prebuilds/'))).toEqual(['prebuilds/linux-x64/vitest-chaos.glibc.node']);
  expect(packed.filter((p) => /vmlinux\.h$/.test(p))).toEqual([]);
  // Not needed by a user: TypeScript sources, tests, the eBPF C sources (objects are shipped), maps, build trees.
  expect(
    packed.filter((p) => /^(src|test|bench|examples|fixtures|build|\.cache)\//.test(p) || /\.bpf\.c$|\.map$|\.ts$(?<!\.d\.ts)/.test(p)),
  ).toEqual([]);
});

describe.each(PROJECTS)('a user project on vitest $vitest, testcontainers $testcontainers', ({ vitest: version, testcontainers }) => {
  it('installs with --ignore-scripts and no compiler, and its chaos test passes: loss measured, reverted before the next test', async () => {
    const dir = await userProject(version, testcontainers);
    const installed = JSON.parse(readFileSync(join(dir, 'node_modules', 'vitest', 'package.json'), 'utf8')).version;
    expect(installed).toBe(version);
    // one vitest, one runner, one testcontainers: the user's
    expect(copiesOf(dir, 'vitest')).toHaveLength(1);
    expect(copiesOf(dir, '@vitest/runner')).toHaveLength(1);
    expect(copiesOf(dir, 'testcontainers')).toHaveLength(1);
    expect(existsSync(join(dir, 'node_modules', 'vitest-chaos', 'build'))).toBe(false); // nothing was compiled

    let out = '';
    try {
      const r = await run(
        process.execPath,
        ['node_modules/vitest/vitest.mjs', 'run', '--reporter=default', '--reporter=json', '--outputFile.json=report.json'],
        {
          cwd: dir,
          env: bareEnv({ VC_RUN_ID: inject('testRunId') }),
          timeout: 180_000,
          maxBuffer: 64 << 20,
        },
      );
      out = r.stdout + r.stderr;
    } catch (err) {
      out = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
    }
    const report = existsSync(join(dir, 'report.json')) ? JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) : null;
    const results = (report?.testResults?.[0]?.assertionResults ?? []) as { title: string; status: string; failureMessages: string[] }[];
    const line = <T>(tag: string) => {
      const m = new RegExp(`USER-RESULT ${tag} (\\{.*\\})`).exec(out);
      return m ? (JSON.parse(m[1]!) as T) : null;
    };
    const during = line<Record<string, number>>('during');
    const after = line<{ rounds: number[]; sent: number; active: number }>('after');
    console.info(
      `vitest ${version}: ${results.map((r) => `${r.title}: ${r.status}`).join('; ')}\n  during the fault ${JSON.stringify(during)}\n  next test ${JSON.stringify(after)}`,
    );
    if (results.some((r) => r.status !== 'passed') || results.length !== 2) console.info(out);
    expect(results.map((r) => r.status)).toEqual(['passed', 'passed']);
    expect(during?.ingressDropped).toBeGreaterThan(400 * 0.9 * 0.4);
    expect(during?.lost).toBeGreaterThanOrEqual(during?.ingressDropped ?? Number.NaN);
    expect(after?.active).toBe(0);
    // 50% loss left over would lose about 200 of 400 in every round
    expect(Math.min(...(after?.rounds ?? [Number.NaN]))).toBeLessThan(40);
  }, 300_000);
});
