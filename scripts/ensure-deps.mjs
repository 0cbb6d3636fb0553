#!/usr/bin/env node
// First step of `npm start` and `npm test`: make a fresh clone runnable with no other command.
// Installs dependencies when missing or stale, installs Debian's chromium (the page tests) and
// python3-numpy (the reference-mapping test) when they are missing and this is a Debian-like
// machine run as root, and stops with one line when
// something the project cannot install itself (Node too old, no redis-server) is missing.
// Plain JS with no dependencies: it runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const needRedis = process.argv.includes('--need-redis');
const needChromium = process.argv.includes('--need-chromium');
const needNumpy = process.argv.includes('--need-numpy');

function stop(line) {
  process.stderr.write(`${line}\n`);
  process.exit(1);
}

const [major] = process.versions.node.split('.').map(Number);
if (major < 20) stop(`Bamba Serve needs Node.js 20 or newer (this is ${process.versions.node}): install it from nodejs.org or your package manager.`);

const installedMarker = join(root, 'node_modules', '.package-lock.json');
const lockfile = join(root, 'package-lock.json');
const stale = !existsSync(installedMarker) || statSync(lockfile).mtimeMs > statSync(installedMarker).mtimeMs;
if (stale) {
  process.stderr.write('Installing dependencies (npm ci)…\n');
  // --ignore-scripts: node-llama-cpp's postinstall may try to download or build llama.cpp;
  // its prebuilt binaries come as ordinary optional packages and need no script.
  const result = spawnSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' },
  });
  if (result.status !== 0) stop('npm ci failed (see above): check that the npm registry is reachable.');
}

if (needRedis && !process.env.REDIS_URL) {
  const found = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  if (found.error || found.status !== 0) {
    stop('redis-server not found: install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis) or set REDIS_URL to a running Redis.');
  }
}

const canApt = () => process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;

/** Installs a Debian package for `purpose` (an image without package lists needs an update first), or stops with `fix`. */
function aptInstall(pkg, purpose, fix) {
  process.stderr.write(`Installing ${pkg} for ${purpose} (apt-get install -y ${pkg})…\n`);
  const apt = (args) => spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  if (!apt(['install', '-y', pkg]) && !(apt(['update']) && apt(['install', '-y', pkg]))) stop(`apt-get could not install ${pkg}: ${fix}.`);
}

// The page tests drive Debian's chromium with playwright-core (which downloads no browser).
if (needChromium) {
  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) {
    const fix = 'install it (Debian/Ubuntu: apt-get install -y chromium) or set CHROMIUM_PATH to a Chromium binary';
    if (!canApt() || process.env.CHROMIUM_PATH) stop(`${chromium} not found (the page tests need it): ${fix}.`);
    aptInstall('chromium', 'the page tests', fix);
  }
}

// The reference-mapping test runs bench/gpu/reference/check.py, which needs python3 with numpy.
if (needNumpy) {
  const hasNumpy = () => spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
  if (!hasNumpy()) {
    const fix = 'install it (Debian/Ubuntu: apt-get install -y python3-numpy; elsewhere: python3 -m pip install numpy)';
    if (!canApt()) stop(`python3 cannot import numpy (the reference-mapping test needs it): ${fix}.`);
    aptInstall('python3-numpy', 'the reference-mapping test', fix);
    if (!hasNumpy()) stop(`python3 still cannot import numpy after installing python3-numpy: ${fix}.`);
  }
}
