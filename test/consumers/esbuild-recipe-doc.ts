// docs/sdk.md's recipes for a page bundled with esbuild (the `sh` block after "Other bundlers") and with
// webpack (the `js` block there),
// read from the page itself so the consumer test runs exactly what a user copies.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const sdkDoc = fileURLToPath(new URL('../../docs/sdk.md', import.meta.url))
const marker = '\nOther bundlers:'

export function esbuildRecipeFromDocs(): string {
  const text = readFileSync(sdkDoc, 'utf8')
  const start = text.indexOf(marker)
  if (start < 0) throw new Error(`docs/sdk.md has no "${marker.trim()}" paragraph (the esbuild recipe).`)
  const block = /```sh\n([\s\S]*?)```/.exec(text.slice(start))
  if (!block) throw new Error('docs/sdk.md\'s "Other bundlers" paragraph has no sh block after it.')
  return block[1] as string
}

/** docs/sdk.md's webpack.config.js for a page (the `js` block after "Other bundlers"), as a user copies it. */
export function webpackConfigFromDocs(): string {
  const text = readFileSync(sdkDoc, 'utf8')
  const start = text.indexOf(marker)
  if (start < 0) throw new Error(`docs/sdk.md has no "${marker.trim()}" paragraph (the webpack config).`)
  const block = /```js\n(\/\/ webpack\.config\.js[\s\S]*?)```/.exec(text.slice(start))
  if (!block)
    throw new Error(
      'docs/sdk.md\'s "Other bundlers" paragraph has no js block starting `// webpack.config.js`.',
    )
  return block[1] as string
}
