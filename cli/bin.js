#!/usr/bin/env node
// The published entry point. ondevice runs its TypeScript sources directly on Node >= 22.12
// (type stripping); check first so an older Node gets a clear message instead of a SyntaxError.
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(`ondevice needs Node >= 22.12 (this is ${process.version}). Run it through npx / npm run, which use the Node 24 devDependency, or install a newer Node.`)
  process.exit(1)
}
await import('./main.ts')
