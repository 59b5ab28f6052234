/**
 * The direction of imports in src/ (README "Layout of the code"): each layer imports only the
 * layers listed before it. `npm test` runs this (npm run lint:deps); a cycle or a wrong-way
 * import fails the run.
 *
 *   guest      the guest model, units, errors, the one guest-memory reader
 *   formats    ELF, kdump and QEMU migration-stream encoders and decoders, VMCOREINFO text
 *   targets    one folder per architecture: both directions (state in, notes out), Linux layout
 *   transforms discovery, planning, plan → bytes, compression   |  sources   where guest state comes from
 *   sinks      where bytes go (know only the guest layer's errors)
 *   pipeline   the run: a plan into a sink, progress, cancellation
 *   verify     reads finished dumps (formats only)
 *   cli        arguments → request → rendering
 */
const layer = (name) => `^src/${name}(/|\\.ts$)`;
const below = {
  guest: [],
  formats: ['guest'],
  targets: ['guest', 'formats'],
  transforms: ['guest', 'formats', 'targets'],
  sources: ['guest', 'formats', 'targets'],
  sinks: ['guest'],
  pipeline: ['guest', 'formats', 'targets', 'transforms', 'sinks'],
  verify: ['guest', 'formats'],
};
const all = ['guest', 'formats', 'targets', 'transforms', 'sources', 'sinks', 'pipeline', 'verify', 'cli'];

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'Imports point one way.', from: {}, to: { circular: true } },
    ...Object.entries(below).map(([name, allowed]) => ({
      name: `${name}-imports-only-${allowed.join('-') || 'itself'}`,
      severity: 'error',
      comment: `src/${name} may import only ${allowed.map((a) => `src/${a}`).join(', ') || 'itself'}.`,
      from: { path: layer(name) },
      to: { path: all.filter((other) => other !== name && !allowed.includes(other)).map(layer) },
    })),
    {
      name: 'architectures-apart',
      severity: 'error',
      comment: 'An architecture folder does not reach into another one: shared rules live in src/targets/*.ts.',
      from: { path: '^src/targets/([^/]+)/' },
      to: { path: '^src/targets/[^/]+/', pathNot: '^src/targets/$1/' },
    },
    {
      name: 'src-does-not-import-tests',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
