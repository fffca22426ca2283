// `npm pack` makes a tarball that installs into a fresh project, where the
// package imports under node and its types resolve for TypeScript (npm test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 });

test('npm pack makes an installable tarball with the module and its types', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cascade-sdk-pack-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const [packed] = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', dir], pkgDir));
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  assert.equal(packed.name, '@cascade-sfu/client');
  assert.equal(packed.version, pkg.version);
  assert.deepEqual(packed.files.map((f) => f.path).sort(), ['LICENSE', 'README.md', 'cascade.d.ts', 'cascade.js', 'package.json']);

  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  run(npm, ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, packed.filename)], app);

  // The installed module is the file the node serves at /sdk/cascade.js.
  const installed = join(app, 'node_modules', '@cascade-sfu', 'client');
  assert.ok(readFileSync(join(installed, 'cascade.js')).equals(readFileSync(join(pkgDir, 'cascade.js'))), 'installed cascade.js differs');

  const out = run(process.execPath, ['--input-type=module', '-e', `
    import * as sdk from '@cascade-sfu/client';
    import { createRequire } from 'node:module';
    const meta = createRequire(import.meta.url)('@cascade-sfu/client/package.json');
    const room = new sdk.Room();
    console.log(JSON.stringify({
      exports: Object.keys(sdk).sort(),
      url: sdk.signalURL('https://sfu.example.com'),
      state: room.state,
      version: meta.version,
    }));
  `], app);
  assert.deepEqual(JSON.parse(out), {
    exports: ['CascadeError', 'PROTOCOL_VERSION', 'Room', 'SIMULCAST_LAYERS', 'httpBaseURL', 'measureRTT', 'parseSections', 'route', 'signalURL'],
    url: 'wss://sfu.example.com/v1/rtc',
    state: 'new',
    version: pkg.version,
  });

  // TypeScript finds the types through the package's exports.
  writeFileSync(join(app, 'use.ts'), `
    import { Room, type RoomStats } from '@cascade-sfu/client';
    const room = new Room();
    room.on('firstframe', ({ firstFrameMs }) => console.log(firstFrameMs.toFixed(0)));
    export const stats: Promise<RoomStats> = room.stats();
  `);
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], strict: true, noEmit: true, types: [] },
    files: ['use.ts'],
  }));
  const tsc = join(pkgDir, 'node_modules', 'typescript', 'bin', 'tsc');
  run(process.execPath, [tsc, '-p', join(app, 'tsconfig.json')], app);
});
