// The watchdog charges a server with a held event loop, and not with time its process spent
// without a core: a real hold in this process, then a server process stopped by SIGSTOP (what a
// process waiting for a core looks like from outside: its main thread does not run).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { servedHere, startHealthWatchdog } from './watchdog.ts'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('event-loop watchdog', () => {
  it('charges a server whose event loop is held for 1.5 s', async () => {
    const server = createServer((_request, response) => response.end('{}'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const watchdog = startHealthWatchdog(base, servedHere())
    await sleep(300)
    // Holding the loop, as a synchronous pass over a client's input would: 1.5 s of this
    // process's CPU time (not wall time: on a loaded machine the loop also waits for a core).
    const start = process.cpuUsage()
    while (process.cpuUsage(start).user + process.cpuUsage(start).system < 1_500_000) {}
    await sleep(300)
    const report = await watchdog.stop()
    server.close()
    expect(report.failures).toBe(0)
    expect(report.worstWallExcessMs).toBeGreaterThan(1000)
    expect(report.worstExcessMs, JSON.stringify(report.slow)).toBeGreaterThan(1000)
  })

  // Linux says how long a thread ran; elsewhere the whole difference is charged.
  if (existsSync('/proc/self/task')) {
    it('does not charge a server process for time it could not run (stopped 1.5 s)', async () => {
      const child = spawn(
        process.execPath,
        [
          '-e',
          `require('node:http').createServer((q, s) => s.end('{}')).listen(0, '127.0.0.1', function () { console.log(this.address().port) })`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      )
      try {
        const port = await new Promise<string>((resolve) =>
          child.stdout.once('data', (data) => resolve(String(data).trim())),
        )
        const watchdog = startHealthWatchdog(`http://127.0.0.1:${port}`, { pid: child.pid! })
        await sleep(300)
        child.kill('SIGSTOP')
        await sleep(1500)
        child.kill('SIGCONT')
        await sleep(300)
        const report = await watchdog.stop()
        expect(report.failures).toBe(0)
        expect(report.worstWallExcessMs).toBeGreaterThan(1000)
        expect(report.worstExcessMs, JSON.stringify(report.slow)).toBeLessThan(500)
      } finally {
        child.kill('SIGKILL')
      }
    })
  }
})
