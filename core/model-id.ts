// The id a model package's location gives when none is set (a server's MODEL_ID or --model-id, a
// package's manifest name). A handoff asks the edge for the device's model by this id, so the
// device (client-runtime/load-model.ts), `ondevice serve` and `createNodeModelHost`
// (worker/node.ts), `ondevice edge` (cli/commands/edge.ts) and the Worker (worker/index.ts) all
// take it from here: three near-copies of it disagreed on Windows paths, percent-encoded names,
// a URL with a port and no path, and a URL with a query string or fragment.

/** The repository's name when `location` is a `.../<repository>/resolve/<revision>/` URL, else undefined. */
export function huggingFaceRepository(location: string): string | undefined {
  const match = /\/([^/?#]+)\/resolve\/[^/?#]+\/*(?:[?#].*)?$/.exec(location)
  return match?.[1]
}

/** `https://host/...`, `file:///...`: a scheme followed by `//`. */
const urlPattern = /^[a-z][a-z0-9+.-]*:\/\/([^/\\?#]*)([^?#]*)/i

/**
 * A `scheme:` before a location that is no URL (the Worker's `r2:model/`, `assets:/model/`); two
 * letters at least, so a Windows drive (`C:`) stays part of the path.
 */
const schemePrefix = /^[a-z][a-z0-9+.-]+:/i

/**
 * The default model id for a package at `location`, the same wherever it is loaded:
 * - a Hugging Face `.../<repository>/resolve/<revision>/` URL: the repository's name (the last
 *   segment is the revision, `main` for every model);
 * - a URL (http(s), file): its path's last segment, percent-decoded (`my%20model` → `my model`,
 *   the folder's own name), its query and fragment left out (the package's files are fetched
 *   without them); a URL with no path: its host (`127.0.0.1:8787`);
 * - a folder path, POSIX or Windows (`C:\models\qwen3-0.6b`), or the Worker's `r2:PREFIX` /
 *   `assets:/PREFIX`: its last segment as written.
 * Trailing slashes never count. Undefined when there is no segment at all (`/`, `r2:`).
 */
export function modelIdFromLocation(location: string): string | undefined {
  const repository = huggingFaceRepository(location)
  if (repository !== undefined) return repository
  const url = urlPattern.exec(location)
  if (url) {
    const last = lastSegment(url[2] ?? '')
    if (last === undefined) return url[1] === '' ? undefined : url[1]
    try {
      return decodeURIComponent(last)
    } catch {
      // A lone `%` is no escape: the segment is the name as written.
      return last
    }
  }
  return lastSegment(location.replace(schemePrefix, ''))
}

function lastSegment(path: string): string | undefined {
  const segments = path.split(/[\\/]/).filter((segment) => segment !== '')
  const last = segments.at(-1)
  // `C:\` names a drive, not a package.
  return last === undefined || /^[a-z]:$/i.test(last) ? undefined : last
}
