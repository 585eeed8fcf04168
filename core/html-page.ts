// A server that answers a missing file with an HTML page (a single-page app's index.html
// fallback, a login or error page, a wrong URL prefix) returns 200. Whatever fetches a binary or
// a package file checks for that before using or caching the body, and says what happened in
// these words instead of "not valid JSON" or a WebAssembly CompileError.

const htmlStarts = ['<!doctype', '<html', '<head', '<body', '<!--', '<?xml']

/** Whether a response is an HTML page, by its content-type or the first bytes of its body. */
export function isHtmlPage(contentType: string | null | undefined, head?: Uint8Array | string): boolean {
  const type = (contentType ?? '').toLowerCase()
  if (type.includes('text/html') || type.includes('application/xhtml')) return true
  if (head === undefined) return false
  const text =
    typeof head === 'string'
      ? head.slice(0, 64)
      : String.fromCharCode(...head.subarray(0, Math.min(head.byteLength, 64)))
  const start = text
    .replace(/^\uFEFF/, '')
    .trimStart()
    .toLowerCase()
  return htmlStarts.some((prefix) => start.startsWith(prefix))
}

/** The sentence every such error starts with. */
export function htmlPageReason(url: string): string {
  return `an HTML page came back for ${url}: a wrong URL, or a server's fallback page (an app's index.html) answering for a file it does not have`
}

/** The WebAssembly binary magic number, `\0asm`. */
export function isWebAssembly(bytes: Uint8Array): boolean {
  return (
    bytes.byteLength >= 8 && bytes[0] === 0x00 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d
  )
}
