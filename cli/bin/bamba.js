#!/usr/bin/env node
// Launcher kept in plain JS so npm can link the `bamba` bin before the TypeScript is built.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('bamba: not built yet; run `npm run build` in the repository root first\n');
  process.exit(1);
}
await import(main);
