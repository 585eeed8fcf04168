// Writes a package file's block digests (core/model-package.ts, "Block digests"): the SHA-256 of
// each `digestBlockBytes` block, in order, into the file blockDigestsPath(path) names.
import { createHash } from 'node:crypto'
import { closeSync, mkdirSync, openSync, readSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { blockDigestsBytes, blockDigestsPath, digestBlockBytes } from '../../core/model-package.ts'

/**
 * Writes the block digests of `root/path` (a file of `bytes` bytes). Returns their path in the
 * package and the whole file's SHA-256, from the same read, so the manifest need not read it again.
 */
export function writeBlockDigests(
  root: string,
  path: string,
  bytes: number,
): { readonly digestsPath: string; readonly sha256: string } {
  const digests = Buffer.alloc(blockDigestsBytes(bytes))
  const block = Buffer.allocUnsafe(digestBlockBytes)
  const whole = createHash('sha256')
  const fd = openSync(join(root, path), 'r')
  try {
    for (let index = 0; index * digestBlockBytes < bytes; index++) {
      const length = Math.min(digestBlockBytes, bytes - index * digestBlockBytes)
      let filled = 0
      while (filled < length) {
        const read = readSync(fd, block, filled, length - filled, index * digestBlockBytes + filled)
        if (read === 0) throw new Error(`${path} is shorter than its ${bytes} bytes`)
        filled += read
      }
      const piece = block.subarray(0, length)
      whole.update(piece)
      createHash('sha256')
        .update(piece)
        .digest()
        .copy(digests, index * 32)
    }
  } finally {
    closeSync(fd)
  }
  const digestsPath = blockDigestsPath(path)
  mkdirSync(dirname(join(root, digestsPath)), { recursive: true })
  writeFileSync(join(root, digestsPath), digests)
  return { digestsPath, sha256: whole.digest('hex') }
}
