// Per-key rate limits. On Cloudflare the Workers rate-limiting binding counts across isolates
// in a location; elsewhere (Node, or a Worker without the binding) an in-isolate token bucket does
// the job for that process. Both answer the same question: may this key send a request now?

export interface RateLimitOutcome {
  readonly allowed: boolean
  /** When not allowed: seconds until a request would be allowed again. */
  readonly retryAfterSeconds: number
}

export interface RateLimiter {
  limit(key: string): Promise<RateLimitOutcome>
}

/** The shape of a Workers `ratelimits` binding (`env.RATE_LIMITER.limit({ key })`). */
export interface WorkersRateLimitBinding {
  limit(options: { key: string }): Promise<{ success: boolean }>
}

export interface MemoryRateLimiterOptions {
  /** Requests allowed per `periodSeconds` per key (also the burst size). */
  readonly limit: number
  readonly periodSeconds: number
  /** Most keys remembered; beyond it, keys with a full bucket are forgotten first. */
  readonly maxKeys?: number
  readonly now?: () => number
}

interface Bucket {
  tokens: number
  updatedAt: number
}

/** A token bucket per key, refilled continuously at `limit / periodSeconds` per second. */
export function createMemoryRateLimiter(options: MemoryRateLimiterOptions): RateLimiter {
  const { limit, periodSeconds } = options
  if (!Number.isFinite(limit) || limit < 1) throw new RangeError('rate limit: `limit` must be a number >= 1')
  if (!Number.isFinite(periodSeconds) || periodSeconds <= 0)
    throw new RangeError('rate limit: `periodSeconds` must be > 0')
  const now = options.now ?? (() => Date.now())
  const maxKeys = options.maxKeys ?? 10_000
  const perMillisecond = limit / (periodSeconds * 1000)
  const buckets = new Map<string, Bucket>()

  const refill = (bucket: Bucket, at: number) => {
    bucket.tokens = Math.min(limit, bucket.tokens + (at - bucket.updatedAt) * perMillisecond)
    bucket.updatedAt = at
  }

  return {
    async limit(key) {
      const at = now()
      let bucket = buckets.get(key)
      if (!bucket) {
        if (buckets.size >= maxKeys) {
          for (const [oldKey, old] of buckets) {
            refill(old, at)
            if (old.tokens >= limit) buckets.delete(oldKey)
          }
          // Still full of active keys: drop the oldest rather than grow without bound.
          if (buckets.size >= maxKeys) {
            const oldest = buckets.keys().next().value
            if (oldest !== undefined) buckets.delete(oldest)
          }
        }
        bucket = { tokens: limit, updatedAt: at }
        buckets.set(key, bucket)
      }
      refill(bucket, at)
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1
        return { allowed: true, retryAfterSeconds: 0 }
      }
      return {
        allowed: false,
        retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perMillisecond / 1000)),
      }
    },
  }
}

/**
 * Adapts the Workers binding. It says only yes or no, so Retry-After is the binding's period
 * (10 or 60 seconds, as configured in wrangler.toml). When the binding itself fails (its store
 * is busy or unreachable), `fallback` (an in-isolate bucket) answers for that request: a
 * limiter's outage must neither fail every request with a 500 nor lift the limit.
 */
export function workersRateLimiter(
  binding: WorkersRateLimitBinding,
  periodSeconds: number,
  fallback: RateLimiter,
  onBindingError: (error: unknown) => void = () => {},
): RateLimiter {
  return {
    async limit(key) {
      let success: boolean
      try {
        ;({ success } = await binding.limit({ key }))
      } catch (error) {
        onBindingError(error)
        return fallback.limit(key)
      }
      return { allowed: success, retryAfterSeconds: success ? 0 : periodSeconds }
    },
  }
}
