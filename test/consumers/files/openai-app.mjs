// A user's Node script on the `openai` npm client against `ondevice serve` (argv[2]: its base URL,
// the key in API_KEY): a chat, a stream, a tool call and a json_schema answer.
import OpenAI from 'openai'

const client = new OpenAI({ baseURL: `${process.argv[2]}/v1`, apiKey: process.env.API_KEY })
const model = (await client.models.list()).data[0]?.id
const messages = [{ role: 'user', content: 'Hi' }]
const chat = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0 })
const stream = await client.chat.completions.create({
  model,
  messages,
  max_tokens: 6,
  temperature: 0,
  stream: true,
})
let streamedText = ''
for await (const chunk of stream) streamedText += chunk.choices[0]?.delta?.content ?? ''
const tools = await client.chat.completions.create({
  model,
  messages: [{ role: 'user', content: 'The weather in Paris?' }],
  max_tokens: 60,
  tool_choice: 'required',
  parallel_tool_calls: false,
  tools: [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        parameters: {
          type: 'object',
          properties: { city: { type: 'string', maxLength: 8 } },
          required: ['city'],
        },
      },
    },
  ],
})
const json = await client.chat.completions.create({
  model,
  messages: [{ role: 'user', content: 'A number' }],
  max_tokens: 60,
  response_format: {
    type: 'json_schema',
    json_schema: {
      name: 'answer',
      strict: true,
      schema: {
        type: 'object',
        properties: { a: { type: 'integer' } },
        required: ['a'],
        additionalProperties: false,
      },
    },
  },
})
const badKey = await new OpenAI({ baseURL: `${process.argv[2]}/v1`, apiKey: 'not-the-key' }).chat.completions
  .create({ model, messages })
  .then(
    () => null,
    (error) => ({ status: error.status, message: error.message }),
  )
const call = tools.choices[0]?.message.tool_calls?.[0]
console.log(
  JSON.stringify({
    model,
    text: chat.choices[0]?.message.content,
    finishReason: chat.choices[0]?.finish_reason,
    streamedText,
    toolFinish: tools.choices[0]?.finish_reason,
    toolCall: call && { name: call.function.name, city: typeof JSON.parse(call.function.arguments).city },
    json: Number.isInteger(JSON.parse(json.choices[0]?.message.content ?? 'null')?.a),
    badKey,
  }),
)
