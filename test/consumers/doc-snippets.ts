// The TypeScript blocks of README.md and docs/*.md that show ondevice's API, read from the pages
// as a user copies them, for the consumer test to type-check against the packed package. A block
// that uses names it does not define (messages, apiKey, ...) gets declarations of them in front,
// as the user's surrounding code would have. Every `ts` block that imports from 'ondevice' must be
// listed here, so a new one is checked too (or named in `notChecked` with the reason).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = new URL('../../', import.meta.url)

interface SnippetSource {
  /** The page, relative to the repository. */
  readonly page: string
  /** How the block's first line starts, as the page writes it. */
  readonly firstLine: string
  /** Declarations of the names the block uses and does not define. */
  readonly preamble?: string
}

const userMessages = "const messages = [{ role: 'user' as const, content: 'Hi' }]\n"

const checked: readonly SnippetSource[] = [
  { page: 'docs/worker.md', firstLine: "import { serve } from '@hono/node-server'" },
  {
    page: 'README.md',
    firstLine: "import { createClient } from 'ondevice'",
    preamble:
      'declare const apiKey: string\ndeclare const signal: AbortSignal\ndeclare const schema: Record<string, unknown>\n' +
      'declare const parameters: Record<string, unknown>\ndeclare const onProgress: (progress: unknown) => void\n' +
      userMessages,
  },
  {
    page: 'README.md',
    firstLine: "import { streamText } from 'ai'",
    preamble: 'declare const url: string\n',
  },
  { page: 'README.md', firstLine: '// vite.config.ts: ONNX Runtime' },
  {
    page: 'README.md',
    firstLine: "import { encodeChatTurns, generate, Tokenizer } from 'ondevice/core'",
    preamble: 'declare const tokenizerJson: string\ndeclare const tokenizerConfigJson: string\n',
  },
  { page: 'docs/runtime.md', firstLine: "import { loadModel } from 'ondevice/runtime'" },
  {
    page: 'docs/sdk.md',
    firstLine: "import { createClient } from 'ondevice'",
    preamble: `declare const apiKey: string\ndeclare const signal: AbortSignal\n${userMessages}`,
  },
  {
    page: 'docs/sdk.md',
    firstLine: '// JSON following a schema',
    preamble: `import { createClient } from 'ondevice'\nconst ai = createClient()\n${userMessages}`,
  },
  { page: 'docs/sdk.md', firstLine: '// vite.config.ts' },
  { page: 'docs/sdk.md', firstLine: "import { createBrowserStore } from 'ondevice/runtime'" },
  {
    page: 'docs/sdk.md',
    firstLine: "// vite.config.ts: defineConfig({ base: '/notes/'",
    // A Vite app's import.meta.env (its tsconfig lists vite/client).
    preamble: '/// <reference types="vite/client" />\n',
  },
  {
    page: 'docs/sdk.md',
    firstLine: "import { generateText, streamText } from 'ai'",
    preamble: 'declare const model: string\ndeclare const url: string\n',
  },
]

/** Blocks that import ondevice and are not type-checked here, and why. */
const notChecked: Readonly<Record<string, string>> = {
  // A Worker's only file: type-checked in the wrangler project with `wrangler types`.
  "docs/worker.md:export { default } from 'ondevice/worker'": 'the wrangler project',
  // Needs the container's wrangler.toml (a Dockerfile from a checkout): checked by hand, see the page.
  "docs/worker.md:export { ContainerProxy, default, OndeviceContainer } from 'ondevice/worker'":
    'a project with a container',
  "docs/worker.md:// src/index.ts with a route of your own; every other request goes to ondevice's app.":
    'the wrangler project',
  // vite-plugin-pwa is the app's choice, not a dependency the consumer projects install.
  'docs/sdk.md:// vite.config.ts: offline with vite-plugin-pwa (npm install -D vite-plugin-pwa)':
    'needs vite-plugin-pwa',
}

export interface DocSnippet {
  /** A file name for it: page and index, e.g. readme-0.ts. */
  readonly fileName: string
  readonly text: string
}

function tsBlocks(page: string): string[] {
  const text = readFileSync(fileURLToPath(new URL(page, root)), 'utf8')
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map(([, body]) => body as string)
}

export function docSnippets(): DocSnippet[] {
  const snippets = checked.map((source, index) => {
    const block = tsBlocks(source.page).find((body) => body.startsWith(source.firstLine))
    if (block === undefined)
      throw new Error(
        `${source.page} has no ts block starting "${source.firstLine}" any more: update test/consumers/doc-snippets.ts.`,
      )
    // export {} keeps a block without imports a module (its top-level await and names its own).
    return { fileName: `doc-snippet-${index}.ts`, text: `${source.preamble ?? ''}${block}\nexport {}\n` }
  })
  const pages = ['README.md', 'docs/sdk.md', 'docs/runtime.md', 'docs/worker.md', 'docs/builder.md']
  for (const page of pages) {
    for (const block of tsBlocks(page)) {
      const firstLine = block.split('\n')[0] as string
      if (!/from 'ondevice/.test(block)) continue
      const listed = checked.some((source) => source.page === page && block.startsWith(source.firstLine))
      if (!listed && notChecked[`${page}:${firstLine}`] === undefined)
        throw new Error(
          `${page}: the ts block starting "${firstLine}" uses ondevice and is not type-checked: list it in test/consumers/doc-snippets.ts.`,
        )
    }
  }
  return snippets
}
