// Runs webpack on the project's webpack.config.js (docs/sdk.md's, as a user copies it) through
// webpack's Node API, as `npx webpack --mode MODE` does without webpack-cli: `node webpack-build.mjs
// production|development OUTDIR [node [ENTRY]]`. With `node`, the same entry (or ENTRY) for target
// 'node': the server bundle an app's framework makes of the page's modules (Next.js's server render
// of a client component, its route handlers). Prints the emitted assets' names and sizes as JSON,
// and webpack's warnings on stderr.
import { resolve } from 'node:path'
import webpack from 'webpack'
import config from './webpack.config.js'

const [mode, outdir, target, entry] = process.argv.slice(2)
const compiler = webpack({
  ...config,
  mode,
  output: { ...config.output, path: resolve(outdir) },
  ...(target === 'node' ? { target: 'node' } : {}),
  ...(entry ? { entry } : {}),
})
compiler.run((error, stats) => {
  if (error || stats.hasErrors()) {
    console.error(error ?? stats.toString({ all: false, errors: true }))
    process.exit(1)
  }
  if (stats.hasWarnings()) console.error(stats.toString({ all: false, warnings: true }))
  const { assets } = stats.toJson({ all: false, assets: true })
  console.log(JSON.stringify(assets.map(({ name, size }) => ({ name, size }))))
  compiler.close(() => {})
})
