// Settings from the environment as an operator gets them wrong: every bad value is refused with
// the variable's name and its range, never accepted to misbehave later.
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'
import { maxTimerMs, settingsFromEnv } from './env-config.ts'
import { resolveLimits } from './options.ts'

function refusal(env: Record<string, string>): InvalidArgumentError {
  try {
    settingsFromEnv(env)
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError)
    return error as InvalidArgumentError
  }
  throw new Error(`${JSON.stringify(env)} was accepted`)
}

describe('settingsFromEnv', () => {
  it('refuses a timeout longer than a timer takes (it would fire at once: QUEUE_TIMEOUT_MS=99999999999 refused every queued request)', () => {
    for (const name of ['QUEUE_TIMEOUT_MS', 'STALL_TIMEOUT_MS', 'READER_STALL_TIMEOUT_MS']) {
      const error = refusal({ [name]: '99999999999' })
      expect(error.param).toBe(name)
      expect(error.message).toBe(`${name} must be an integer from 1 to 2147483647, got '99999999999'.`)
      expect(settingsFromEnv({ [name]: String(maxTimerMs) }).limits).toBeDefined()
    }
    expect(() => resolveLimits({ queueTimeoutMs: maxTimerMs + 1 })).toThrow(
      /limits\.queueTimeoutMs must be an integer from 1 to 2147483647/,
    )
    expect(resolveLimits({ queueTimeoutMs: maxTimerMs }).queueTimeoutMs).toBe(maxTimerMs)
  })

  it('reads the bounds on reading requests: HEADERS_TIMEOUT_MS, BODY_TIMEOUT_MS, MAX_BODY_BYTES_IN_FLIGHT', () => {
    const settings = settingsFromEnv({
      HEADERS_TIMEOUT_MS: '5000',
      BODY_TIMEOUT_MS: '7000',
      MAX_BODY_BYTES_IN_FLIGHT: '2097152',
    })
    expect(settings.headersTimeoutMs).toBe(5000)
    expect(settings.limits).toMatchObject({ bodyTimeoutMs: 7000, maxBodyBytesInFlight: 2_097_152 })
    for (const name of ['HEADERS_TIMEOUT_MS', 'BODY_TIMEOUT_MS', 'MAX_BODY_BYTES_IN_FLIGHT'])
      expect(refusal({ [name]: '0' }).param).toBe(name)
    expect(refusal({ BODY_TIMEOUT_MS: '99999999999' }).message).toBe(
      "BODY_TIMEOUT_MS must be an integer from 1 to 2147483647, got '99999999999'.",
    )
    // Unset: 30 s without a byte, 300 s for the whole body, and 64 MiB of bodies (or one of the
    // largest, when that is more; a Worker isolate's default is 8 MiB, test/workerd/body-read.test.ts).
    expect(resolveLimits({})).toMatchObject({
      bodyStallTimeoutMs: 30_000,
      bodyTimeoutMs: 300_000,
      maxBodyBytesInFlight: 64 * 2 ** 20,
    })
    expect(resolveLimits({ maxBodyBytes: 2 ** 30 }).maxBodyBytesInFlight).toBe(2 ** 30)
    expect(() => resolveLimits({ maxBodyBytes: 2 ** 20, maxBodyBytesInFlight: 2 ** 19 })).toThrow(
      /limits\.maxBodyBytesInFlight \(MAX_BODY_BYTES_IN_FLIGHT\) must be at least limits\.maxBodyBytes/,
    )
  })

  it('BODY_STALL_TIMEOUT_MS and BODY_TIMEOUT_MS: one set alone moves the other out of its way; both set, a stall bound past the whole is refused', () => {
    expect(settingsFromEnv({ BODY_STALL_TIMEOUT_MS: '5000' }).limits.bodyStallTimeoutMs).toBe(5000)
    for (const name of ['BODY_STALL_TIMEOUT_MS', 'BODY_TIMEOUT_MS']) {
      expect(refusal({ [name]: '0' }).param).toBe(name)
      expect(refusal({ [name]: '99999999999' }).message).toBe(
        `${name} must be an integer from 1 to 2147483647, got '99999999999'.`,
      )
    }
    const limits = (env: Record<string, string>) => resolveLimits(settingsFromEnv(env).limits)
    // A deployment that set BODY_TIMEOUT_MS before the stall bound existed keeps its meaning: the
    // whole body within it (so no gap longer either).
    expect(limits({ BODY_TIMEOUT_MS: '10000' })).toMatchObject({
      bodyTimeoutMs: 10_000,
      bodyStallTimeoutMs: 10_000,
    })
    expect(limits({ BODY_TIMEOUT_MS: '600000' })).toMatchObject({
      bodyTimeoutMs: 600_000,
      bodyStallTimeoutMs: 30_000,
    })
    // A stall bound raised alone takes the whole-body bound with it.
    expect(limits({ BODY_STALL_TIMEOUT_MS: '600000' })).toMatchObject({
      bodyTimeoutMs: 600_000,
      bodyStallTimeoutMs: 600_000,
    })
    expect(limits({ BODY_STALL_TIMEOUT_MS: '5000', BODY_TIMEOUT_MS: '5000' })).toMatchObject({
      bodyTimeoutMs: 5000,
      bodyStallTimeoutMs: 5000,
    })
    expect(() => limits({ BODY_STALL_TIMEOUT_MS: '60000', BODY_TIMEOUT_MS: '10000' })).toThrow(
      /limits\.bodyStallTimeoutMs \(BODY_STALL_TIMEOUT_MS, 60000\) must be at most limits\.bodyTimeoutMs \(BODY_TIMEOUT_MS, 10000\)/,
    )
  })

  it("MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT: one client's share of the bodies read at once, a quarter of the budget unset, between one body of the cap and the whole budget", () => {
    expect(resolveLimits({}).maxBodyBytesInFlightPerClient).toBe(16 * 2 ** 20)
    // A Worker isolate's 8 MiB budget: 2 MiB, two bodies of the cap.
    expect(resolveLimits({ maxBodyBytesInFlight: 8 * 2 ** 20 }).maxBodyBytesInFlightPerClient).toBe(
      2 * 2 ** 20,
    )
    // Never below a body of the cap, never past the budget.
    expect(
      resolveLimits({ maxBodyBytes: 2 ** 20, maxBodyBytesInFlight: 2 * 2 ** 20 })
        .maxBodyBytesInFlightPerClient,
    ).toBe(2 ** 20)
    expect(resolveLimits({ maxBodyBytes: 2 ** 30 }).maxBodyBytesInFlightPerClient).toBe(2 ** 30)
    const limits = (env: Record<string, string>) => resolveLimits(settingsFromEnv(env).limits)
    expect(limits({ MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT: '4194304' }).maxBodyBytesInFlightPerClient).toBe(
      4 * 2 ** 20,
    )
    expect(refusal({ MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT: '0' }).message).toBe(
      "MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT must be an integer >= 1, got '0'.",
    )
    expect(() => limits({ MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT: '1000' })).toThrow(
      /limits\.maxBodyBytesInFlightPerClient \(MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT\) must be at least limits\.maxBodyBytes \(MAX_BODY_BYTES, 1048576\)/,
    )
    expect(() =>
      limits({ MAX_BODY_BYTES_IN_FLIGHT: '4194304', MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT: '8388608' }),
    ).toThrow(
      /limits\.maxBodyBytesInFlightPerClient \(MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT, 8388608\) must be at most limits\.maxBodyBytesInFlight \(MAX_BODY_BYTES_IN_FLIGHT, 4194304\)/,
    )
    expect(refusal({ MAX_BODY_BYTES_PER_CLIENT: '1' }).message).toMatch(
      /did you mean MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT\?/,
    )
    expect(() => resolveLimits({ maxBodyBytesPerClient: 1 } as never)).toThrow(
      /maxBodyBytesInFlightPerClient/,
    )
  })

  it('CLIENT_ADDRESS_HEADER: the header a proxy names the client in; not a header name, or with BEHIND_CLOUDFLARE, refused at start', () => {
    expect(settingsFromEnv({ CLIENT_ADDRESS_HEADER: 'X-Forwarded-For' }).clientAddressHeader).toBe(
      'X-Forwarded-For',
    )
    expect(settingsFromEnv({}).clientAddressHeader).toBeUndefined()
    const app = (options: object) => () => createApp({ modelHost: createTestHost(), ...options })
    expect(app({ clientAddressHeader: 'X-Forwarded-For' })).not.toThrow()
    expect(app({ clientAddressHeader: 'x forwarded for' })).toThrow(
      "clientAddressHeader (CLIENT_ADDRESS_HEADER) must be a header name such as 'x-forwarded-for', got 'x forwarded for'.",
    )
    expect(app({ clientAddressHeader: 'x-real-ip', behindCloudflare: true })).toThrow(
      /both say where the client's address comes from: behind Cloudflare it is cf-connecting-ip\. Set one of them\./,
    )
    expect(app({ clientAddressHeader: 'CF-Connecting-IP', behindCloudflare: true })).not.toThrow()
  })

  it('refuses a name for a body setting that is not one, saying which is meant (it would do nothing without a word)', () => {
    expect(refusal({ BODY_IDLE_TIMEOUT_MS: '60000' }).message).toBe(
      'BODY_IDLE_TIMEOUT_MS is not a setting of this server: did you mean BODY_STALL_TIMEOUT_MS? Rename it (docs/worker.md lists the settings).',
    )
    expect(refusal({ MAX_BODY_IN_FLIGHT: '1' }).param).toBe('MAX_BODY_IN_FLIGHT')
    expect(refusal({ HEADER_TIMEOUT_MS: '1' }).message).toMatch(/did you mean HEADERS_TIMEOUT_MS\?/)
    // createApp's limits: a misspelt name was dropped and its default taken.
    expect(() => resolveLimits({ bodyIdleTimeoutMs: 60_000 } as never)).toThrow(
      /Unknown limit "bodyIdleTimeoutMs": did you mean "bodyStallTimeoutMs"\?/,
    )
    expect(() => resolveLimits({ bodyTimeoutMS: 60_000 } as never)).toThrow(/did you mean "bodyTimeoutMs"\?/)
    expect(() => resolveLimits({ max_body_bytes: 1 } as never)).toThrow(
      /did you mean "maxBodyBytes"\? The names here are camelCase/,
    )
  })

  it('refuses a slot count or body limit no process can hold (MAX_CONCURRENT=100000 built 100,000 sessions before serving)', () => {
    expect(refusal({ MAX_CONCURRENT: '100000' }).message).toBe(
      "MAX_CONCURRENT must be an integer from 1 to 256, got '100000'.",
    )
    expect(refusal({ MAX_BODY_BYTES: '99999999999999999999' }).param).toBe('MAX_BODY_BYTES')
    expect(settingsFromEnv({ MAX_CONCURRENT: '256', MAX_BODY_BYTES: String(2 ** 30) }).limits).toMatchObject({
      maxConcurrent: 256,
      maxBodyBytes: 2 ** 30,
    })
    expect(() => resolveLimits({ maxConcurrent: 257 })).toThrow(
      /limits\.maxConcurrent must be an integer from 1 to 256/,
    )
    expect(() => resolveLimits({ maxBodyBytes: 2 ** 30 + 1 })).toThrow(
      /limits\.maxBodyBytes must be an integer from 1 to 1073741824/,
    )
  })

  it('names the variable for negative, non-numeric and out-of-range values; empty means the default', () => {
    expect(refusal({ MAX_CONCURRENT: '-1' }).message).toBe(
      "MAX_CONCURRENT must be an integer from 1 to 256, got '-1'.",
    )
    expect(refusal({ MAX_QUEUE: 'abc' }).message).toBe("MAX_QUEUE must be an integer >= 0, got 'abc'.")
    expect(refusal({ SHUTDOWN_TIMEOUT_MS: '-5' }).message).toBe(
      "SHUTDOWN_TIMEOUT_MS must be an integer from 0 to 600000, got '-5'.",
    )
    expect(settingsFromEnv({ SHUTDOWN_TIMEOUT_MS: '0' }).shutdownTimeoutMs).toBe(0)
    expect(settingsFromEnv({ MAX_CONCURRENT: '' }).limits.maxConcurrent).toBeUndefined()
  })

  it('a value of spaces is unset, as an empty one is (SHUTDOWN_TIMEOUT_MS=" " read as 0 and cut every stream at stop; MAX_QUEUE=" " as no queue)', () => {
    const blank = settingsFromEnv({
      SHUTDOWN_TIMEOUT_MS: ' ',
      MAX_QUEUE: '  ',
      MAX_CONCURRENT: '\t',
      MODEL_ID: ' ',
      RATE_LIMIT_PERIOD_SECONDS: ' ',
    })
    expect(blank.shutdownTimeoutMs).toBeUndefined()
    expect(blank.limits.maxQueue).toBeUndefined()
    expect(blank.limits.maxConcurrent).toBeUndefined()
    expect(blank.modelId).toBeUndefined()
    expect(blank.rateLimitPeriodSeconds).toBe(60)
    expect(settingsFromEnv({ SHUTDOWN_TIMEOUT_MS: ' 250 ' }).shutdownTimeoutMs).toBe(250)
  })

  it('refuses an ALLOWED_ORIGINS entry that is not an origin (it would never match, CORS shut without a word)', () => {
    expect(refusal({ ALLOWED_ORIGINS: 'https://app.example, example.com' }).message).toBe(
      "ALLOWED_ORIGINS entry 'example.com' is not an origin as browsers send it (scheme://host[:port], no path), so it would never match. Write 'https://example.com'.",
    )
    expect(refusal({ ALLOWED_ORIGINS: 'https://app.example/' }).message).toContain(
      "Write 'https://app.example'.",
    )
    expect(refusal({ ALLOWED_ORIGINS: 'ftp://x.example' }).param).toBe('ALLOWED_ORIGINS')
    expect(
      settingsFromEnv({ ALLOWED_ORIGINS: 'https://app.example, http://localhost:5173 *' }).allowedOrigins,
    ).toEqual(['https://app.example', 'http://localhost:5173', '*'])
  })

  it('takes the origins of browser extensions and app shells as browsers send them (refused: URL spells their origin null), and a CORS request from one gets its answer', async () => {
    const appOrigins = [
      'chrome-extension://abcdefghijklmnopabcdefghijklmnop',
      'moz-extension://6f4b1a2c-0d3e-4f5a-8b9c-1d2e3f4a5b6c',
      'capacitor://localhost',
      'tauri://localhost',
    ]
    expect(settingsFromEnv({ ALLOWED_ORIGINS: appOrigins.join(',') }).allowedOrigins).toEqual(appOrigins)
    expect(refusal({ ALLOWED_ORIGINS: 'capacitor://localhost/' }).message).toContain(
      "Write 'capacitor://localhost'.",
    )
    for (const notAPage of ['ftp://x.example', 'file:///index.html', 'wss://x.example', 'mailto:a@b.example'])
      expect(refusal({ ALLOWED_ORIGINS: notAPage }).param).toBe('ALLOWED_ORIGINS')
    const app = createApp({ modelHost: createTestHost(), allowedOrigins: appOrigins, log: () => undefined })
    const preflight = await app.request('/v1/chat/completions', {
      method: 'OPTIONS',
      headers: {
        origin: appOrigins[0] as string,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    })
    expect(preflight.headers.get('access-control-allow-origin')).toBe(appOrigins[0])
  })

  it("createApp's allowedOrigins of the wrong type is an InvalidArgumentError naming it (a number crashed with a TypeError; one string was read letter by letter)", () => {
    const refused = (allowedOrigins: unknown): InvalidArgumentError => {
      try {
        createApp({
          modelHost: createTestHost(),
          allowedOrigins: allowedOrigins as string[],
          log: () => undefined,
        })
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError)
        return error as InvalidArgumentError
      }
      throw new Error(`${String(allowedOrigins)} was accepted`)
    }
    expect(refused([123]).message).toBe(
      "allowedOrigins entry 0 must be a string (an origin such as 'https://app.example.com', or '*'), got number.",
    )
    expect(refused(['*', null]).param).toBe('allowedOrigins')
    expect(refused('https://app.example').message).toContain(
      "got the string 'https://app.example': wrap it in [ ]",
    )
    expect(refused({ length: 1 }).param).toBe('allowedOrigins')
  })
})
