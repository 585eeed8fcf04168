// Where `fixture`, `convert` and `export` write: the folder is made (one level at a time) and
// checked to accept a new entry before any work starts, so an unusable --out fails at once with
// the flag's name. Without it, the builder's recursive mkdir never settled for a folder under
// /proc (Node's `mkdir -p` loops at 100% CPU when a parent answers ENOENT for a new child), and a
// read-only or foreign folder failed only after the conversion, with a stack trace.
import { mkdir, rmdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { makeFolder } from '../client-runtime/store/cache-folder.ts'
import { InvalidArgumentError } from '../core/errors.ts'

const codeOf = (error: unknown): string => String((error as { code?: unknown } | null)?.code ?? error)

/**
 * Makes `folder` when `create` (else it must exist) and checks that a new entry can be made in
 * it; throws invalid_argument naming `flag` otherwise.
 */
export async function prepareOutputFolder(folder: string, flag: string, create: boolean): Promise<void> {
  const path = resolve(folder)
  if (create)
    await makeFolder(path).catch((error: unknown) => {
      throw new InvalidArgumentError(
        flag,
        `${path} cannot be created (${codeOf(error)}): choose another ${flag}.`,
      )
    })
  else if (
    !(await stat(path).then(
      (info) => info.isDirectory(),
      () => false,
    ))
  )
    throw new InvalidArgumentError(flag, `The folder ${path} does not exist: create it first.`)
  const probe = join(path, `.ondevice-probe-${process.pid}`)
  await mkdir(probe).catch((error: unknown) => {
    throw new InvalidArgumentError(
      flag,
      `${path} does not accept new files (${codeOf(error)}): choose another ${flag}.`,
    )
  })
  await rmdir(probe)
}
