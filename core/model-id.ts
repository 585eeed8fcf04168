// The id a model package's location gives when none is set (a server's MODEL_ID or --model-id, a
// package's manifest name) is its folder's or URL's last path segment, `qwen3-0.6b` for
// `/models/qwen3-0.6b/`. A Hugging Face package URL ends in `/<repository>/resolve/<revision>/`,
// whose last segment is the revision (`main` for every model): there the id is the repository's
// name. The device (client-runtime/load-model.ts), `ondevice serve` (worker/node.ts) and the Worker
// (worker/index.ts) all ask this first, so a handoff names the same model on both sides.

/** The repository's name when `location` is a `.../<repository>/resolve/<revision>/` URL, else undefined. */
export function huggingFaceRepository(location: string): string | undefined {
  const match = /\/([^/?#]+)\/resolve\/[^/?#]+\/*(?:[?#].*)?$/.exec(location)
  return match?.[1]
}
