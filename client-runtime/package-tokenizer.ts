// The one way a model package becomes core's Tokenizer, on every host (the device's loadModel,
// the edge worker, the CLI): tokenizer.json is required; tokenizer_config.json (the chat
// template, special tokens), config.json, generation_config.json (EOS ids) and
// chat_template.jinja are read when the package has them.
import { ModelError } from '../core/errors.ts'
import { Tokenizer } from '../core/tokenizer.ts'
import type { PackageReader } from './package-reader.ts'

/** The package files the tokenizer is built from; every host downloads or verifies these first. */
export const tokenizerFileNames = [
  'tokenizer.json',
  'tokenizer_config.json',
  'config.json',
  'generation_config.json',
  'chat_template.jinja',
] as const

async function optionalText(reader: PackageReader, path: string): Promise<string | undefined> {
  if (reader.exists && !(await reader.exists(path))) return undefined
  try {
    return await reader.readText(path)
  } catch (error) {
    // Only "not there" makes a file optional: a listed file that is missing or corrupt fails.
    if (error instanceof ModelError && error.code === 'model_not_found') return undefined
    throw error
  }
}

/** Builds the package's tokenizer from the files it has (tokenizer.json required). */
export async function loadPackageTokenizer(reader: PackageReader): Promise<Tokenizer> {
  const [tokenizerJson, tokenizerConfigJson, configJson, generationConfigJson, chatTemplate] =
    await Promise.all([
      // Bytes, not text: core reads tokenizer.json's big arrays straight from them, so neither
      // the file's text (a two-byte string twice the file's size) nor its parsed objects exist.
      reader.readBytes('tokenizer.json'),
      optionalText(reader, 'tokenizer_config.json'),
      optionalText(reader, 'config.json'),
      optionalText(reader, 'generation_config.json'),
      optionalText(reader, 'chat_template.jinja'),
    ])
  return Tokenizer.fromFiles({
    tokenizerJson,
    ...(tokenizerConfigJson === undefined ? {} : { tokenizerConfigJson }),
    ...(configJson === undefined ? {} : { configJson }),
    ...(generationConfigJson === undefined ? {} : { generationConfigJson }),
    ...(chatTemplate === undefined ? {} : { chatTemplate }),
  })
}
