// A server's Retry-After header (RFC 9110 §10.2.3), read one way for the model package's downloads
// (the store) and the edge's answers (the SDK's edge client), so a device error and an edge error
// carry the same retryAfterSeconds for the same header.
//
// Only the header's own forms are read: delta-seconds, or an HTTP date in one of its three forms.
// JavaScript's Date.parse alone takes almost anything ('soon 2030' is a date in 2030), which made a
// garbled header a years-long wait.

/** The longest Retry-After passed on (an hour): a server's word is not a ten-year ban. */
export const maximumRetryAfterSeconds = 3600

// A negative count is read as 0 (come back now), as the server most likely meant.
const deltaSeconds = /^-?\d+(\.\d+)?$/
const httpDateForms = [
  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
  /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/,
  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
  /^[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/,
  // asctime: Sun Nov  6 08:49:37 1994
  /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/,
]

/**
 * The seconds a Retry-After header asks for, within [0, maximumRetryAfterSeconds]; undefined when
 * there is none or it is neither delta-seconds nor an HTTP date.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined
  const text = value.trim()
  const clamp = (seconds: number) => Math.min(maximumRetryAfterSeconds, Math.max(0, seconds))
  if (deltaSeconds.test(text)) return clamp(Number(text))
  if (!httpDateForms.some((form) => form.test(text))) return undefined
  // asctime has no zone: it is GMT.
  const date = Date.parse(text.endsWith('GMT') ? text : `${text} GMT`)
  return Number.isNaN(date) ? undefined : clamp(Math.ceil((date - now) / 1000))
}
