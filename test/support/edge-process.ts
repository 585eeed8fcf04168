// Tests that run `ondevice edge` as a process (the repository's CLI, or an installed package's):
// its output collected, the URL it prints once wrangler says Ready, and what every process's
// command line holds (to show no secret or temporary folder is left on one).
import type { ChildProcess } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'

export interface EdgeProcess {
  /** Everything it printed so far (stdout and stderr). */
  output(): string
  /** The edge worker's URL, once it printed it and wrangler's Ready; rejects if it exits first. */
  readonly ready: Promise<string>
}

export function watchEdgeProcess(child: ChildProcess, readyTimeoutMs: number): EdgeProcess {
  let output = ''
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`ondevice edge did not get ready:\n${output}`)),
      readyTimeoutMs,
    )
    const collect = (chunk: Buffer) => {
      output += chunk.toString()
      const found = /edge worker\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
      if (found && output.includes('Ready')) {
        clearTimeout(timer)
        resolve(found)
      }
    }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`ondevice edge exited (${code}):\n${output}`))
    })
  })
  // A test that stops it before Ready does not wait on this.
  ready.catch(() => {})
  return { output: () => output, ready }
}

/** The command line of every process on this machine (Linux's /proc). */
export async function processCommandLines(): Promise<string[]> {
  return Promise.all(
    (await readdir('/proc'))
      .filter((entry) => /^\d+$/.test(entry))
      .map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')),
  )
}
