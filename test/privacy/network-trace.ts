// Runs a command under strace and lists every connection attempt that leaves the machine: a
// connect/sendto/sendmsg to an IPv4 or IPv6 address other than loopback, anything to port 53
// (a DNS query, even to a local resolver), and glibc's lookup sockets (nscd, systemd-resolved),
// which a name lookup tries before it sends a DNS packet. Netlink (interface listing) and other
// Unix sockets stay on the machine and are ignored.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The strace binary, or an error that says how to install it. */
export function stracePath(): string {
  for (const candidate of ['/usr/bin/strace', '/bin/strace']) {
    try {
      execFileSync(candidate, ['-V'], { stdio: 'ignore' })
      return candidate
    } catch {}
  }
  throw new Error(
    'The network-privacy tests trace system calls with strace, which is not installed. ' +
      'Install it with `sudo apt-get install strace` (scripts/setup-system.sh does this; CI runs it).',
  )
}

export interface TracedProcess {
  readonly child: ChildProcess
  /** stdout and stderr so far. */
  output(): string
  /** Sends a signal to strace and the traced process (their process group). */
  kill(signal: NodeJS.Signals): void
  /** Waits for the process to exit (killing it with SIGTERM first when `kill` is set); returns the violations. */
  finish(options?: { kill?: boolean }): Promise<{ code: number | null; violations: string[]; calls: number }>
}

/** Starts `command args` under `strace -f`, tracing the calls that can send to a network address. */
export function traceNetwork(
  command: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; stdin?: 'pipe' | 'ignore' },
): TracedProcess {
  const folder = mkdtempSync(join(tmpdir(), 'ondevice-trace-'))
  const log = join(folder, 'trace.log')
  const child = spawn(
    stracePath(),
    ['-f', '-qq', '-e', 'trace=connect,sendto,sendmsg', '-o', log, '--', command, ...args],
    // Its own process group: a signal to strace alone detaches it and leaves the traced process running.
    {
      env: options.env,
      cwd: options.cwd,
      stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
      detached: true,
    },
  )
  let text = ''
  child.stdout?.on('data', (data: Buffer) => {
    text += data.toString()
  })
  child.stderr?.on('data', (data: Buffer) => {
    text += data.toString()
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const signal = (name: NodeJS.Signals) => {
    if (child.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(-child.pid, name)
      } catch {}
    }
  }
  return {
    child,
    output: () => text,
    kill: signal,
    finish: async ({ kill = false } = {}) => {
      if (kill) signal('SIGTERM')
      const code = await exited
      const lines = readFileSync(log, 'utf8').split('\n')
      rmSync(folder, { recursive: true, force: true })
      const calls = lines.filter((line) => /\b(connect|sendto|sendmsg)\(/.test(line)).length
      return { code, violations: lines.filter(isOffMachine), calls }
    },
  }
}

/** One strace line: does it try to reach something beyond this machine (or look a name up)? */
export function isOffMachine(line: string): boolean {
  if (!/\b(connect|sendto|sendmsg)\(/.test(line)) return false
  if (/sun_path="[^"]*(nscd|resolve)[^"]*"/.test(line)) return true
  if (/htons\(53\)/.test(line)) return true
  const ipv4 = /sa_family=AF_INET,.*?inet_addr\("([^"]+)"\)/.exec(line)
  if (ipv4?.[1] !== undefined) return !ipv4[1].startsWith('127.')
  const ipv6 = /sa_family=AF_INET6,.*?inet_pton\(AF_INET6, "([^"]+)"/.exec(line)
  if (ipv6?.[1] !== undefined) return !(ipv6[1] === '::1' || ipv6[1].startsWith('::ffff:127.'))
  return false
}
