// A user's Node script on the Vercel AI SDK (the `ai` package from npm, the machine's own Node):
// generateText, streamText, generateObject with a zod schema and a tool loop through
// ondevice/ai-sdk, on the package `ondevice export-default` wrote to ./model.
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai'
import { createOndevice } from 'ondevice/ai-sdk'
import { z } from 'zod'

const ondevice = createOndevice({ model: 'model', policy: 'device-only' })
const generated = await generateText({ model: ondevice(), prompt: 'Hi!', maxOutputTokens: 6, temperature: 0 })
const streamed = streamText({ model: ondevice(), prompt: 'Hi!', maxOutputTokens: 6, temperature: 0 })
let streamedText = ''
for await (const delta of streamed.textStream) streamedText += delta
const person = z.object({ name: z.string().max(12), age: z.number().int() })
const object = await generateObject({
  model: ondevice(),
  schema: person,
  prompt: 'A person',
  maxOutputTokens: 80,
})
const inputs = []
const withTool = await generateText({
  model: ondevice(),
  prompt: 'The weather in Paris?',
  maxOutputTokens: 60,
  toolChoice: 'required',
  providerOptions: { ondevice: { parallelToolCalls: false } },
  tools: {
    weather: tool({
      description: "A city's weather",
      inputSchema: z.object({ city: z.string().max(8) }),
      execute: async (input) => {
        inputs.push(input)
        return { celsius: 20 }
      },
    }),
  },
  stopWhen: stepCountIs(1),
})
console.log(
  JSON.stringify({
    text: generated.text,
    finishReason: generated.finishReason,
    outputTokens: generated.usage.outputTokens,
    route: generated.providerMetadata?.ondevice?.route,
    streamedText,
    streamedRoute: (await streamed.providerMetadata)?.ondevice?.route,
    object: person.safeParse(object.object).success,
    toolFinish: withTool.finishReason,
    toolInputs: inputs.map((input) => typeof input.city),
  }),
)
