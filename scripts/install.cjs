#!/usr/bin/env node
// The package's install script: uses the prebuilt addon when it loads here, and builds from
// source only when asked (`npm rebuild vitest-chaos --build-from-source`, or
// VITEST_CHAOS_BUILD_FROM_SOURCE=1) or when no prebuild loads; a build that cannot happen
// says exactly what to install. No dependency of ours is required before the check, so a
// linked checkout whose node_modules is missing gets a message, not a stack trace.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync } = require('node:fs');
const { delimiter, join } = require('node:path');

const root = join(__dirname, '..');
const APT = 'apt-get install -y';
const DNF = 'dnf install -y';

function loads(file) {
  try {
    require(file);
    return true;
  } catch (err) {
    console.warn(`vitest-chaos: ${file} does not load here: ${err.message.split('\n')[0]}`);
    return false;
  }
}

function candidates() {
  const out = [join(root, 'build', 'Release', 'vitest_chaos.node')];
  const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (existsSync(dir)) for (const f of readdirSync(dir)) if (f.endsWith('.node')) out.push(join(dir, f));
  return out.filter((f) => existsSync(f));
}

function onPath(cmd) {
  return (process.env.PATH || '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));
}

function anyFile(paths) {
  return paths.some((p) => existsSync(p));
}

function resolvable(name) {
  try {
    require.resolve(name, { paths: [root] });
    return true;
  } catch {
    return false;
  }
}

/** What a source build lacks here: [what, Debian package, Fedora package]. */
function missingForBuild(needBpf) {
  const missing = [];
  const inc = (rel) => anyFile([`/usr/include/${rel}`, `/usr/local/include/${rel}`]);
  if (!onPath('make')) missing.push(['make', 'make', 'make']);
  if (!onPath('g++') && !onPath('c++')) missing.push(['a C++ compiler (g++)', 'g++', 'gcc-c++']);
  if (!onPath('python3')) missing.push(['python3 (for node-gyp)', 'python3', 'python3']);
  if (!inc('bpf/libbpf.h')) missing.push(['libbpf headers (bpf/libbpf.h)', 'libbpf-dev', 'libbpf-devel']);
  if (!inc('libelf.h')) missing.push(['libelf headers (libelf.h)', 'libelf-dev', 'elfutils-libelf-devel']);
  if (!inc('zlib.h')) missing.push(['zlib headers (zlib.h)', 'zlib1g-dev', 'zlib-devel']);
  if (needBpf) {
    if (!onPath('clang')) missing.push(['clang (for the eBPF objects)', 'clang llvm', 'clang llvm']);
    if (!onPath('bpftool')) missing.push(['bpftool (vmlinux.h for the eBPF objects)', 'bpftool', 'bpftool']);
  }
  return missing;
}

function fail(lines) {
  console.error(['vitest-chaos: cannot build the native addon from source here.', ...lines].join('\n'));
  process.exit(1);
}

const fromSource =
  process.env.npm_config_build_from_source === 'true' || /^(1|true)$/.test(process.env.VITEST_CHAOS_BUILD_FROM_SOURCE || '');

if (!fromSource && candidates().some(loads)) process.exit(0);

const why = fromSource ? 'a source build was asked for' : `no prebuilt addon loads on ${process.platform}-${process.arch}`;
if (process.platform !== 'linux') {
  fail([`${why}, and vitest-chaos runs only on Linux (eBPF in the kernel that runs the containers).`,
    'On macOS or Windows, run the tests inside a Linux VM or a privileged Linux container.']);
}
const objects = ['packet-drop', 'connect', 'syscall-signal', 'veth', 'dns', 'conn-limit', 'observe'];
const needBpf = objects.some((o) => !existsSync(join(root, 'bpf', `${o}.bpf.o`)));
const missing = missingForBuild(needBpf);
if (!resolvable('node-addon-api')) {
  if (existsSync(join(root, '.git'))) {
    // `npm install /path/to/checkout` links the checkout without installing its dependencies:
    // the install goes on, and the checkout's own set-up builds the addon.
    console.warn(`vitest-chaos: ${why}, and this checkout (${root}) has no dependencies installed. ` +
      `Build it there before use: \`npm ci && npm run build\` (or as root: bash scripts/setup.sh).`);
    process.exit(0);
  }
  fail([`${why}, and node-addon-api is not installed in ${root}: reinstall vitest-chaos with its dependencies.`]);
}
if (missing.length) {
  fail([`${why}; missing: ${missing.map((m) => m[0]).join(', ')}.`,
    `Install them (Debian/Ubuntu): ${APT} ${missing.map((m) => m[1]).join(' ')}`,
    `               (Fedora/RHEL): ${DNF} ${missing.map((m) => m[2]).join(' ')}`,
    'then: VITEST_CHAOS_BUILD_FROM_SOURCE=1 npm rebuild vitest-chaos']);
}
console.log(`vitest-chaos: building the native addon from source (${why})`);
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status || 1);
};
if (needBpf) run('make', ['-C', 'bpf']);
// npm names its bundled node-gyp in npm_config_node_gyp; outside npm, the one on PATH.
const gyp = process.env.npm_config_node_gyp;
if (gyp && existsSync(gyp)) run(process.execPath, [gyp, 'rebuild']);
else run('node-gyp', ['rebuild']);
if (!loads(join(root, 'build', 'Release', 'vitest_chaos.node'))) process.exit(1);
