// Runs webpack on the project's webpack.config.js (docs/sdk.md's, as a user copies it) through
// webpack's Node API, as `npx webpack --mode MODE` does without webpack-cli: `node webpack-build.mjs
// production|development OUTDIR`. Prints the emitted assets' names and sizes as JSON.
import { resolve } from 'node:path'
import webpack from 'webpack'
import config from './webpack.config.js'

const [mode, outdir] = process.argv.slice(2)
const compiler = webpack({ ...config, mode, output: { ...config.output, path: resolve(outdir) } })
compiler.run((error, stats) => {
  if (error || stats.hasErrors()) {
    console.error(error ?? stats.toString({ all: false, errors: true }))
    process.exit(1)
  }
  const { assets } = stats.toJson({ all: false, assets: true })
  console.log(JSON.stringify(assets.map(({ name, size }) => ({ name, size }))))
  compiler.close(() => {})
})
