// `ondevice serve` in a child process, for the tests that talk to it over real HTTP as a user's
// client would: ready once it prints its one "Listening on URL (model ID)" line, stopped by its
// PID. `bin` may be another checkout's CLI (test/sdk/edge-versions.test.ts runs older ones).
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const ondeviceBin: string = fileURLToPath(new URL('../../cli/bin.js', import.meta.url))

export interface ServeProcess {
  readonly url: string
  /** The model id it serves, from its ready line. */
  readonly model: string
  readonly child: ChildProcess
  /** Everything it printed so far (its request log has one line per request). */
  output(): string
  /** SIGTERM, SIGKILL after 5 s; resolves with the exit code (null when killed). */
  stop(): Promise<number | null>
}

export interface ServeProcessOptions {
  /** Arguments after `serve`. */
  readonly args?: readonly string[]
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>
  /** Default: this checkout's cli/bin.js. */
  readonly bin?: string
  /** Default 170 s: a cold 2-core CI box builds the default package first. */
  readonly timeoutMs?: number
  /** Names it in failure messages. Default 'ondevice serve'. */
  readonly label?: string
}

export async function startServeProcess(options: ServeProcessOptions = {}): Promise<ServeProcess> {
  const label = options.label ?? 'ondevice serve'
  let output = ''
  const child = spawn(process.execPath, [options.bin ?? ondeviceBin, 'serve', ...(options.args ?? [])], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const stop = async (): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    const code = await exited
    clearTimeout(timer)
    return code
  }
  const ready = await new Promise<{ url: string; model: string }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${label} did not start within ${options.timeoutMs ?? 170_000} ms:\n${output}`)),
      options.timeoutMs ?? 170_000,
    )
    const onData = (data: Buffer) => {
      output += data.toString()
      const match = /Listening on (http:\/\/127\.0\.0\.1:\d+) \(model ([^)]+)\)/.exec(output)
      if (match?.[1] && match[2]) {
        clearTimeout(timer)
        resolve({ url: match[1], model: match[2] })
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`${label} exited with ${code}:\n${output}`))
    })
  }).catch(async (error: unknown) => {
    await stop()
    throw error
  })
  return { ...ready, child, output: () => output, stop }
}
