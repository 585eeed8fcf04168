// The one redirect rule every package source applies (the Node store, the browser store and the
// edge worker's URL reader): manifest.json must come from the origin the app named. It is what
// every other file is checked against, so a redirect to another origin (a hijacked route, an open
// redirect) would let that origin vouch for any bytes. Weight files may still be redirected
// (CDNs such as Hugging Face's serve large files from another host) because their sha256 comes
// from the manifest. A package without a manifest has no such protection: it loads with a warning.
import { ModelError } from '../../core/errors.ts'

/** The origin a response finally came from when `fetch` followed redirects to another one, else undefined. */
export function crossOriginRedirect(requested: string | URL, response: Response): string | undefined {
  // `url` is where the response finally came from (after redirects). It is compared directly
  // rather than trusting `redirected`, which not every fetch implementation sets; an empty `url`
  // (a Response built by hand, a custom fetch) means there is nothing to check.
  if (typeof response.url !== 'string' || response.url === '') return undefined
  const finalOrigin = new URL(response.url).origin
  return finalOrigin === new URL(requested).origin ? undefined : finalOrigin
}

/**
 * Refuses manifest.json served through a redirect to another origin: cancels the body unread
 * and throws ModelError('model_invalid') naming both origins.
 */
export async function refuseCrossOriginManifest(
  manifestUrl: string | URL,
  response: Response,
): Promise<void> {
  const otherOrigin = crossOriginRedirect(manifestUrl, response)
  if (otherOrigin === undefined) return
  await response.body?.cancel().catch(() => undefined)
  const requested = new URL(manifestUrl)
  throw new ModelError(
    'model_invalid',
    `${requested.href} redirected to another origin (${otherOrigin}); refusing it. manifest.json vouches for every file of the package, so it must come from the package's own origin (${requested.origin}): serve it there.`,
  )
}
