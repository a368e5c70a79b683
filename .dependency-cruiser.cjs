// The layers of docs/architecture.md, top to bottom. A module may import only
// from its own layer or from layers below it; peers on one line may not import
// each other. The test command runs `npm run lint:layers`.
const LAYERS = [
  ['api'],
  ['report'],
  ['experiment'],
  ['steady-state', 'faults', 'observe'],
  ['datapath'],
  ['targets'],
  ['journal'],
  ['kernel'],
  ['contracts'],
];

const forbidden = [
  {
    name: 'no-cycles',
    comment: 'A cycle makes two modules one: break it by moving the shared part down.',
    severity: 'error',
    from: { path: '^src/' },
    to: { circular: true },
  },
  {
    name: 'no-unknown-layer',
    comment: 'Every folder of src/ is a layer of docs/architecture.md.',
    severity: 'error',
    from: { path: '^src/[^/]+/', pathNot: `^src/(${LAYERS.flat().join('|')})/` },
    to: {},
  },
];
LAYERS.forEach((row, i) => {
  const above = LAYERS.slice(0, i + 1).flat();
  for (const layer of row) {
    const notAllowed = above.filter((l) => l !== layer);
    if (!notAllowed.length) continue;
    forbidden.push({
      name: `layer-${layer}`,
      comment: `src/${layer} may import only from layers below it (docs/architecture.md)`,
      severity: 'error',
      from: { path: `^src/${layer}/` },
      to: { path: `^src/(${notAllowed.join('|')})/` },
    });
  }
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
    exclude: { path: '(^|/)(node_modules|dist)/' },
  },
};
