#!/usr/bin/env node
// The `ondevice` command. In the published package it runs the built JavaScript (dist/cli/main.js,
// Node >= 20.19); in a checkout of the repository, where the TypeScript sources sit next to it,
// it runs those (type stripping on by default, import.meta.main and module.registerHooks: Node >=
// 22.18, which `npx` / `npm run` provide through the Node 24 devDependency; 22.12 to 22.17 failed
// on the .ts import or on registerHooks). Node 23 has it on by default from 23.6 only.
import { existsSync } from 'node:fs'

const [major, minor] = process.versions.node.split('.').map(Number)
const fromSources = existsSync(new URL('./main.ts', import.meta.url))
const [needMajor, needMinor] = fromSources ? [22, 18] : [20, 19]
const tooOld =
  major < needMajor ||
  (major === needMajor && minor < needMinor) ||
  // 23 > 22, but 23.0 to 23.5 strip no types by default (22.18's is a later backport).
  (fromSources && major === 23 && minor < 6)
if (tooOld) {
  console.error(
    `ondevice needs Node >= ${major === 23 && fromSources ? '23.6' : `${needMajor}.${needMinor}`} (this is v${process.versions.node}).` +
      (fromSources
        ? ' In the repository, run it through npx / npm run, which use the Node 24 devDependency.'
        : ' Install a newer Node.'),
  )
  process.exit(1)
}
if (fromSources) {
  // The sources' own package imports ('#runtime-node', '#node-device-host') resolve to .ts files
  // under the 'ondevice-source' condition (package.json), which `npm run` scripts pass with
  // --conditions; a direct `node cli/bin.js` gets it from this resolve hook.
  const { registerHooks } = await import('node:module')
  registerHooks({
    resolve: (specifier, context, nextResolve) =>
      nextResolve(specifier, { ...context, conditions: [...context.conditions, 'ondevice-source'] }),
  })
}
const { main } = fromSources ? await import('./main.ts') : await import('../dist/cli/main.js')
process.exitCode = await main(process.argv.slice(2))
