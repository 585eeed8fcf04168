// `ondevice edge` and `ondevice export-default` refuse what cannot work before starting anything
// (the happy paths run in test/browser/browser-app.test.ts: the exported package on a page, the
// edge as its fallback). The real command line in a child process.
import { spawn, spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { processCommandLines, watchEdgeProcess } from '../../test/support/edge-process.ts'

const main = fileURLToPath(new URL('../main.ts', import.meta.url))
const ondevice = (args: string[]) => {
  const result = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 30_000 })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

let folder: string
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-edge-cli-'))
  // A package whose q8 estimate is over what a Worker isolate holds (only its manifest matters here).
  await mkdir(join(folder, 'big'))
  await writeFile(
    join(folder, 'big', 'manifest.json'),
    JSON.stringify({
      format: 'ondevice-package/1',
      files: [],
      dtypes: ['q8', 'q4'],
      estimatedMemoryBytes: { q8: 900e6, q4: 500e6 },
    }),
  )
  await mkdir(join(folder, 'occupied'))
  await writeFile(join(folder, 'occupied', 'index.html'), '<!doctype html>')
})
afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe('ondevice edge / export-default: refusals with the fix', () => {
  it('a package too large for a Worker isolate with --runtime isolate: exit 2, names the container runtime', () => {
    // Without --runtime isolate such a package runs in containers (test/container covers that).
    const result = ondevice(['edge', '--model', join(folder, 'big'), '--runtime', 'isolate'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(
      /in q8 needs ~900\.0 MB \(the package's own figure .*\) in a Worker isolate: more than its 128 MB\. .* --runtime container/,
    )
    expect(ondevice(['edge', '--runtime', 'gpu']).stderr).toMatch(
      /--runtime must be auto, isolate or container/,
    )
    expect(ondevice(['edge', '--instances', '0']).stderr).toMatch(
      /--instances must be an integer from 1 to 16/,
    )
  })

  it('an origin with a path, a missing folder, a dtype the package lacks: exit 2 each', () => {
    expect(ondevice(['edge', '--allowed-origins', 'http://localhost:5173/app'])).toMatchObject({ code: 2 })
    expect(ondevice(['edge', '--model', join(folder, 'nowhere')]).stderr).toMatch(/is not a folder/)
    expect(ondevice(['edge', '--model', join(folder, 'big'), '--dtype', 'fp16']).stderr).toMatch(
      /holds q8, q4; not fp16/,
    )
  })

  it('export-default never overwrites a folder holding other files', () => {
    const result = ondevice(['export-default', join(folder, 'occupied')])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/holds other files/)
    expect(ondevice(['export-default']).stderr).toMatch(/takes one folder/)
  })
})

describe('ondevice edge with API_KEYS', () => {
  it('keys guard /v1 and never appear on a command line; Ctrl-C leaves no temporary folder', {
    timeout: 240_000,
  }, async () => {
    const packageDirectory = join(folder, 'tiny')
    // The embedded default: small enough for the Worker isolate.
    const exported = ondevice(['export-default', packageDirectory])
    expect(exported.code).toBe(0)
    // It read "...: its text is not meaningful to DIR (20 entries)."
    expect(exported.stdout).toMatch(
      /^Wrote .*tiny \(\d+ entries\): the embedded default model .*: its text is not meaningful\.\n/,
    )
    const key = `edge-test-key-${process.pid}-0123456789`
    // Its own temporary directory (os.tmpdir() follows TMPDIR), to see what it leaves behind.
    const temporary = join(folder, 'tmp')
    await mkdir(temporary)
    const child = spawn(process.execPath, [main, 'edge', '--model', packageDirectory, '--port', '0'], {
      env: { ...process.env, API_KEYS: key, TMPDIR: temporary },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const edge = watchEdgeProcess(child, 200_000)
    try {
      const url = await edge.ready
      expect((await fetch(`${url}/v1/models`)).status).toBe(401)
      const models = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })
      expect(models.status).toBe(200)
      // Every process's command line on this machine (wrangler, workerd, ...): the key is in none.
      const commandLines = await processCommandLines()
      expect(commandLines.filter((line) => line.includes('edge-test-key-'))).toEqual([])
      expect(edge.output()).not.toContain(key)
      // While it runs: the secrets file's folder and wrangler's local state are in TMPDIR.
      expect(
        (await readdir(temporary)).filter((name) => name.startsWith('ondevice-')).length,
      ).toBeGreaterThan(0)
    } finally {
      child.kill('SIGINT')
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)))
    }
    // Ctrl-C stopped wrangler and removed them.
    expect(await readdir(temporary), edge.output()).toEqual([])
  })
})

describe('ondevice edge on a port something else holds', () => {
  it('refuses at once, naming the port (it reported the other server\'s answers, even "Ready", as its own)', {
    timeout: 150_000,
  }, async () => {
    const packageDirectory = join(folder, 'tiny-busy')
    expect(ondevice(['export-default', packageDirectory]).code).toBe(0)
    // Another server on the port that answers everything as an edge would (an earlier
    // `ondevice edge` or `ondevice serve`, whose /healthz and chat completions succeed).
    const other = createServer((request, response) => {
      request.resume()
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ status: 'ok', choices: [] }))
    })
    await new Promise<void>((listening) => other.listen(0, '127.0.0.1', listening))
    const port = (other.address() as AddressInfo).port
    const child = spawn(
      process.execPath,
      [main, 'edge', '--model', packageDirectory, '--port', String(port)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let output = ''
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8')
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    try {
      // Either way it ends: the exit, or a "Ready" line printed for the other server.
      const code = await new Promise<number | null>((done) => {
        child.once('exit', (exitCode) => done(exitCode))
        child.stdout.on('data', () => {
          if (output.includes('Ready')) done(null)
        })
      })
      expect(output).not.toContain('Ready')
      expect(code, output).toBe(2)
      expect(output).toContain(
        `Cannot run the edge worker on 127.0.0.1:${port}: something else listens there`,
      )
      expect(output).toContain('--port (0 picks a free one)')
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGINT')
        await exited
      }
      await new Promise((closed) => other.close(closed))
    }
  })
})

describe("ondevice edge runs the project's own wrangler", () => {
  it('from the folder it runs in (an ondevice installed elsewhere said none was installed), and warns when it is older than 4.164', {
    timeout: 150_000,
  }, async () => {
    const packageDirectory = join(folder, 'tiny-project')
    expect(ondevice(['export-default', packageDirectory]).code).toBe(0)
    // A project whose `npm install --save-dev wrangler` ran on Node 20: npm picks the newest
    // wrangler that Node supports, 4.86.0. It stands in for that release here: its CLI says which
    // one ran and exits, so the command stops there.
    const project = join(folder, 'project-with-old-wrangler')
    await mkdir(join(project, 'node_modules', 'wrangler', 'bin'), { recursive: true })
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'my-edge', private: true }))
    await writeFile(
      join(project, 'node_modules', 'wrangler', 'package.json'),
      JSON.stringify({ name: 'wrangler', version: '4.86.0', bin: { wrangler: './bin/wrangler.js' } }),
    )
    await writeFile(
      join(project, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
      "console.error('the project wrangler 4.86.0 ran'); process.exit(1)\n",
    )
    const child = spawn(process.execPath, [main, 'edge', '--model', packageDirectory, '--port', '0'], {
      cwd: project,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8')
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    try {
      const code = await new Promise<number | null>((done) => {
        child.once('exit', (exitCode) => done(exitCode))
        child.stdout.on('data', () => {
          if (output.includes('Ready')) done(null)
        })
      })
      expect(output).toContain('the project wrangler 4.86.0 ran')
      expect(code, output).toBe(1)
      expect(output).toContain(
        'Warning: wrangler 4.86.0 is installed here; the edge worker is checked with wrangler 4.164 or later',
      )
      expect(output).toContain('`npm install --save-dev wrangler@latest`')
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGINT')
        await exited
      }
    }
  })
})

describe('ondevice edge stopped while it starts', () => {
  it('Ctrl-C before Ready stops wrangler too and leaves no temporary folder', {
    timeout: 120_000,
  }, async () => {
    const packageDirectory = join(folder, 'tiny-early')
    expect(ondevice(['export-default', packageDirectory]).code).toBe(0)
    const temporary = join(folder, 'tmp-early')
    await mkdir(temporary)
    const child = spawn(process.execPath, [main, 'edge', '--model', packageDirectory, '--port', '0'], {
      env: { ...process.env, TMPDIR: temporary },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const edge = watchEdgeProcess(child, 120_000)
    const exited = new Promise((resolve) => child.once('exit', resolve))
    try {
      // wrangler has been spawned once its state folder exists; it is far from Ready then
      // (it still bundles the worker and compiles ONNX Runtime's WebAssembly).
      const deadline = Date.now() + 60_000
      while (!(await readdir(temporary)).some((name) => name.startsWith('ondevice-wrangler-state-'))) {
        if (child.exitCode !== null || Date.now() > deadline)
          throw new Error(`wrangler did not start:\n${edge.output()}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      expect(edge.output()).not.toContain('Ready')
    } finally {
      child.kill('SIGINT')
      await exited
    }
    expect(await readdir(temporary), edge.output()).toEqual([])
    // wrangler runs in its own process group, which a terminal's Ctrl-C does not reach: no process
    // is left with the temporary folder on its command line (wrangler's --persist-to).
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const commandLines = await processCommandLines()
    expect(commandLines.filter((line) => line.includes(temporary))).toEqual([])
  })
})
