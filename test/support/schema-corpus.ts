// A corpus of the JSON Schemas web developers send as response_format or tool parameters:
// OpenAI's structured-output examples, zod schemas as the Vercel AI SDK converts them (zod 4's
// toJSONSchema, zod 3 through the SDK's zod-to-json-schema port), pydantic-style and hand-written
// draft 2020-12 schemas using its keywords. Each entry says what the compiler must do with it:
// enforce it (every document the mask allows validates), or refuse it up front naming the
// keyword's path (a constraint is never silently dropped).
import { zodSchema } from 'ai'
import { z } from 'zod'
import { z as z3 } from 'zod/v3'

export interface CorpusEntry {
  readonly name: string
  readonly schema: unknown
  /** Absent: the schema is enforced. Else the refusal's param, under `schema.` (core's name). */
  readonly refused?: string
}

function zod4(schema: z.ZodType): unknown {
  return z.toJSONSchema(schema)
}
/** What the AI SDK sends for a zod 4 schema (draft-7, input side, additionalProperties: false added). */
function aiSdk4(schema: z.ZodType): unknown {
  return zodSchema(schema).jsonSchema
}
/** What the AI SDK sends for a zod 3 schema (its zod-to-json-schema port). */
function aiSdk3(schema: z3.ZodTypeAny): unknown {
  return zodSchema(schema as never).jsonSchema
}

// --- zod schemas an app writes (the same shapes in zod 4 and zod 3) ---
const recipe4 = z.object({
  title: z.string().min(1).max(40),
  servings: z.number().int().min(1).max(12),
  difficulty: z.enum(['easy', 'medium', 'hard']),
  ingredients: z
    .array(z.object({ name: z.string().max(20), amount: z.string().max(10) }))
    .min(1)
    .max(4),
  vegetarian: z.boolean(),
  notes: z.string().max(30).nullable(),
  tags: z.array(z.string().max(8)).max(3).optional(),
})
const recipe3 = z3.object({
  title: z3.string().min(1).max(40),
  servings: z3.number().int().min(1).max(12),
  difficulty: z3.enum(['easy', 'medium', 'hard']),
  ingredients: z3
    .array(z3.object({ name: z3.string().max(20), amount: z3.string().max(10) }))
    .min(1)
    .max(4),
  vegetarian: z3.boolean(),
  notes: z3.string().max(30).nullable(),
  tags: z3.array(z3.string().max(8)).max(3).optional(),
})
const contact4 = z.object({
  id: z.uuid(),
  email: z.email(),
  createdAt: z.iso.datetime(),
  birthday: z.iso.date().optional(),
  website: z.url().optional(),
  age: z.number().int().positive().max(130),
  score: z.number().min(0).max(1),
})
const contact3 = z3.object({
  id: z3.string().uuid(),
  email: z3.string().email(),
  createdAt: z3.string().datetime(),
  website: z3.string().url().optional(),
  age: z3.number().int().positive().max(130),
  score: z3.number().min(0).max(1),
})
const shape4 = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('circle'), radius: z.number().positive().max(100) }),
  z.object({ kind: z.literal('rect'), w: z.number().min(0).max(10), h: z.number().min(0).max(10) }),
  z.object({ kind: z.literal('label'), text: z.string().max(12) }),
])
const shape3 = z3.discriminatedUnion('kind', [
  z3.object({ kind: z3.literal('circle'), radius: z3.number().positive().max(100) }),
  z3.object({ kind: z3.literal('rect'), w: z3.number().min(0).max(10), h: z3.number().min(0).max(10) }),
  z3.object({ kind: z3.literal('label'), text: z3.string().max(12) }),
])
const misc4 = z.object({
  pair: z.tuple([z.string().max(5), z.number().int().min(0).max(9)]),
  counts: z.record(z.string(), z.number().int().min(0).max(99)),
  mode: z.union([z.literal('auto'), z.literal('manual'), z.number().int().min(0).max(3)]),
  flag: z.boolean().default(false),
  code: z.string().regex(/^[A-Z]{3}-\d{2}$/),
  level: z.number().int().multipleOf(5).min(0).max(50),
  anything: z.unknown(),
})
const misc3 = z3.object({
  pair: z3.tuple([z3.string().max(5), z3.number().int().min(0).max(9)]),
  counts: z3.record(z3.string(), z3.number().int().min(0).max(99)),
  mode: z3.union([z3.literal('auto'), z3.literal('manual'), z3.number().int().min(0).max(3)]),
  flag: z3.boolean().default(false),
  code: z3.string().regex(/^[A-Z]{3}-\d{2}$/),
  level: z3.number().int().multipleOf(5).min(0).max(50),
  anything: z3.unknown(),
})
interface Category4 {
  name: string
  children: Category4[]
}
const category4: z.ZodType<Category4> = z.object({
  name: z.string().max(10),
  get children() {
    return z.array(category4).max(2)
  },
})
const person3 = z3.object({ name: z3.string().max(8), email: z3.string().email().max(30) })
const intersection3 = z3.intersection(person3, z3.object({ role: z3.enum(['admin', 'user']) }))
const intersection4 = z.intersection(
  z.object({ name: z.string().max(8) }),
  z.object({ role: z.enum(['admin', 'user']) }),
)

export const schemaCorpus: readonly CorpusEntry[] = [
  // --- OpenAI's structured-output guide ---
  {
    name: 'openai: math reasoning steps',
    schema: {
      type: 'object',
      properties: {
        steps: {
          type: 'array',
          items: {
            type: 'object',
            properties: { explanation: { type: 'string' }, output: { type: 'string' } },
            required: ['explanation', 'output'],
            additionalProperties: false,
          },
        },
        final_answer: { type: 'string' },
      },
      required: ['steps', 'final_answer'],
      additionalProperties: false,
    },
  },
  {
    name: 'openai: research paper extraction',
    schema: {
      type: 'object',
      properties: {
        title: { type: 'string' },
        authors: { type: 'array', items: { type: 'string' } },
        abstract: { type: 'string' },
        keywords: { type: 'array', items: { type: 'string' } },
      },
      required: ['title', 'authors', 'abstract', 'keywords'],
      additionalProperties: false,
    },
  },
  {
    name: 'openai: UI generation (recursive through #)',
    schema: {
      type: 'object',
      properties: {
        type: {
          type: 'string',
          description: 'The type of the UI component',
          enum: ['div', 'button', 'header', 'section', 'field', 'form'],
        },
        label: { type: 'string', description: 'The label of the UI component' },
        children: { type: 'array', description: 'Nested UI components', items: { $ref: '#' } },
        attributes: {
          type: 'array',
          items: {
            type: 'object',
            properties: { name: { type: 'string' }, value: { type: 'string' } },
            required: ['name', 'value'],
            additionalProperties: false,
          },
        },
      },
      required: ['type', 'label', 'children', 'attributes'],
      additionalProperties: false,
    },
  },
  {
    name: 'openai: UI with $defs and anyOf of components',
    schema: {
      type: 'object',
      properties: { linked_list: { $ref: '#/$defs/linked_list_node' } },
      $defs: {
        linked_list_node: {
          type: 'object',
          properties: {
            value: { type: 'number' },
            next: { anyOf: [{ $ref: '#/$defs/linked_list_node' }, { type: 'null' }] },
          },
          additionalProperties: false,
          required: ['next', 'value'],
        },
      },
      additionalProperties: false,
      required: ['linked_list'],
    },
  },
  {
    name: 'openai: content moderation (nullable through anyOf and type lists)',
    schema: {
      type: 'object',
      properties: {
        is_violating: { type: 'boolean', description: 'Indicates if the content is violating guidelines' },
        category: {
          type: ['string', 'null'],
          description: 'Type of violation, if the content is violating guidelines. Null otherwise.',
          enum: ['violence', 'sexual', 'self_harm', null],
        },
        explanation_if_violating: { type: ['string', 'null'] },
      },
      required: ['is_violating', 'category', 'explanation_if_violating'],
      additionalProperties: false,
    },
  },
  {
    name: 'openai: anyOf of objects (user or address)',
    schema: {
      type: 'object',
      properties: {
        item: {
          anyOf: [
            {
              type: 'object',
              description: 'The user object to insert into the database',
              properties: {
                name: { type: 'string', description: 'The name of the user' },
                age: { type: 'number', description: 'The age of the user' },
              },
              additionalProperties: false,
              required: ['name', 'age'],
            },
            {
              type: 'object',
              description: 'The address object to insert into the database',
              properties: {
                number: { type: 'string' },
                street: { type: 'string' },
                city: { type: 'string' },
              },
              additionalProperties: false,
              required: ['number', 'street', 'city'],
            },
          ],
        },
      },
      additionalProperties: false,
      required: ['item'],
    },
  },
  {
    name: 'openai: definitions reused (steps with $ref)',
    schema: {
      type: 'object',
      properties: {
        steps: { type: 'array', items: { $ref: '#/$defs/step' } },
        final_answer: { type: 'string' },
      },
      $defs: {
        step: {
          type: 'object',
          properties: { explanation: { type: 'string' }, output: { type: 'string' } },
          required: ['explanation', 'output'],
          additionalProperties: false,
        },
      },
      required: ['steps', 'final_answer'],
      additionalProperties: false,
    },
  },
  {
    name: 'openai: function get_weather with strict unit enum',
    schema: {
      type: 'object',
      properties: {
        location: { type: 'string', description: 'City and country e.g. Bogotá, Colombia' },
        units: {
          type: ['string', 'null'],
          enum: ['celsius', 'fahrenheit'],
          description: 'Units the temperature will be returned in.',
        },
      },
      required: ['location', 'units'],
      additionalProperties: false,
    },
  },
  {
    name: 'openai: supported string formats and number bounds',
    schema: {
      type: 'object',
      properties: {
        when: { type: 'string', format: 'date-time' },
        day: { type: 'string', format: 'date' },
        at: { type: 'string', format: 'time' },
        took: { type: 'string', format: 'duration' },
        mail: { type: 'string', format: 'email' },
        host: { type: 'string', format: 'hostname' },
        v4: { type: 'string', format: 'ipv4' },
        v6: { type: 'string', format: 'ipv6' },
        id: { type: 'string', format: 'uuid' },
        username: { type: 'string', pattern: '^@[a-zA-Z0-9_]+$' },
        rating: { type: 'number', minimum: 1, maximum: 5 },
        percent: { type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 100 },
        step: { type: 'integer', multipleOf: 10 },
      },
      required: [
        'when',
        'day',
        'at',
        'took',
        'mail',
        'host',
        'v4',
        'v6',
        'id',
        'username',
        'rating',
        'percent',
        'step',
      ],
      additionalProperties: false,
    },
  },

  // --- zod through zod 4's toJSONSchema and through the AI SDK ---
  { name: 'zod 4 toJSONSchema: recipe', schema: zod4(recipe4) },
  { name: 'AI SDK zod 4: recipe', schema: aiSdk4(recipe4) },
  { name: 'AI SDK zod 3: recipe', schema: aiSdk3(recipe3) },
  { name: 'zod 4 toJSONSchema: contact formats', schema: zod4(contact4) },
  { name: 'AI SDK zod 4: contact formats', schema: aiSdk4(contact4) },
  { name: 'AI SDK zod 3: contact formats', schema: aiSdk3(contact3) },
  { name: 'zod 4 toJSONSchema: discriminated union', schema: zod4(shape4) },
  { name: 'AI SDK zod 4: discriminated union', schema: aiSdk4(shape4) },
  { name: 'AI SDK zod 3: discriminated union', schema: aiSdk3(shape3) },
  {
    name: 'zod 4 toJSONSchema: tuple, record, union, regex, multipleOf, unknown',
    schema: zod4(misc4),
  },
  {
    name: 'AI SDK zod 4: tuple, record, union, regex, multipleOf, unknown',
    schema: aiSdk4(misc4),
  },
  {
    name: 'AI SDK zod 3: tuple, record, union, regex, multipleOf, unknown',
    schema: aiSdk3(misc3),
  },
  { name: 'zod 4 toJSONSchema: recursive category', schema: zod4(category4) },
  { name: 'AI SDK zod 4: recursive category', schema: aiSdk4(category4) },
  { name: 'AI SDK zod 3: intersection', schema: aiSdk3(intersection3) },
  { name: 'zod 4 toJSONSchema: intersection', schema: zod4(intersection4) },
  {
    name: 'zod 4 toJSONSchema: nullable object, enum of numbers via literals, array of unions',
    schema: zod4(
      z.object({
        owner: z.object({ name: z.string().max(6) }).nullable(),
        size: z.union([z.literal(1), z.literal(2), z.literal(4)]),
        items: z.array(z.union([z.string().max(4), z.number().int().min(0).max(9), z.null()])).max(3),
      }),
    ),
  },

  // --- draft 2020-12 keywords ---
  { name: 'empty schema', schema: {} },
  { name: 'boolean schema true', schema: true },
  { name: 'boolean schema false', schema: false, refused: 'schema' },
  {
    name: 'boolean subschemas',
    schema: {
      type: 'object',
      properties: { anything: true, never: false, list: { type: 'array', items: true, maxItems: 2 } },
      required: ['anything', 'list'],
      additionalProperties: false,
    },
  },
  {
    name: 'recursive tree through $defs',
    schema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $ref: '#/$defs/node',
      $defs: {
        node: {
          type: 'object',
          properties: {
            value: { type: 'integer', minimum: 0, maximum: 9 },
            children: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 },
          },
          required: ['value'],
          additionalProperties: false,
        },
      },
    },
  },
  {
    name: 'mutually recursive $defs (expression tree)',
    schema: {
      $defs: {
        expr: { anyOf: [{ $ref: '#/$defs/num' }, { $ref: '#/$defs/op' }] },
        num: { type: 'number', minimum: -10, maximum: 10 },
        op: {
          type: 'object',
          properties: {
            op: { enum: ['+', '-', '*', '/'] },
            args: { type: 'array', items: { $ref: '#/$defs/expr' }, minItems: 2, maxItems: 2 },
          },
          required: ['op', 'args'],
          additionalProperties: false,
        },
      },
      $ref: '#/$defs/expr',
    },
  },
  {
    name: 'oneOf with distinct types',
    schema: {
      oneOf: [
        { type: 'string', maxLength: 5 },
        { type: 'integer' },
        { type: 'null' },
        { type: 'array', items: { type: 'boolean' }, maxItems: 3 },
      ],
    },
  },
  {
    name: 'allOf merge of objects',
    schema: {
      allOf: [
        { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] },
        { type: 'object', properties: { name: { type: 'string', maxLength: 8 } }, required: ['name'] },
      ],
      unevaluatedProperties: false,
    },
  },
  {
    name: 'enum and const of objects and arrays',
    schema: {
      type: 'object',
      properties: {
        preset: { enum: [{ w: 1, h: 2 }, { w: 3, h: 4 }, [1, 2, 3], 'none', null] },
        origin: { const: { x: 0, y: [0, 'zero'] } },
        version: { const: [1, 0] },
      },
      required: ['preset', 'origin', 'version'],
      additionalProperties: false,
    },
  },
  {
    name: 'nullable types as type arrays',
    schema: {
      type: 'object',
      properties: {
        a: { type: ['string', 'null'], maxLength: 4 },
        b: { type: ['integer', 'null'], minimum: 5, maximum: 7 },
        c: { type: ['array', 'null'], items: { type: 'number' }, maxItems: 2 },
        d: { type: ['object', 'null'], properties: { k: { type: 'boolean' } }, additionalProperties: false },
        e: { type: ['number', 'string', 'boolean', 'null'], maxLength: 3, maximum: 0 },
      },
      required: ['a', 'b', 'c', 'd', 'e'],
      additionalProperties: false,
    },
  },
  {
    name: 'OpenAPI nullable: true',
    schema: {
      type: 'object',
      properties: {
        note: { type: 'string', nullable: true, maxLength: 5 },
        n: { type: 'integer', nullable: true },
      },
      required: ['note', 'n'],
      additionalProperties: false,
    },
  },
  {
    name: 'additionalProperties as a schema',
    schema: {
      type: 'object',
      properties: { fixed: { type: 'boolean' } },
      additionalProperties: { type: 'integer', minimum: 0, maximum: 100 },
      required: ['fixed'],
      maxProperties: 4,
    },
  },
  {
    name: 'required with properties absent',
    schema: {
      type: 'object',
      required: ['a', 'b'],
      properties: { a: { type: 'string', maxLength: 3 } },
      additionalProperties: { type: 'integer' },
    },
  },
  {
    name: 'required names only (no properties at all)',
    schema: { type: 'object', required: ['x', 'y'] },
  },
  {
    name: 'prefixItems tuple with items false',
    schema: {
      type: 'array',
      prefixItems: [
        { type: 'string', maxLength: 3 },
        { type: 'integer', minimum: 0, maximum: 9 },
        { enum: ['x', 'y'] },
      ],
      items: false,
      minItems: 2,
    },
  },
  {
    name: 'prefixItems with items schema',
    schema: {
      type: 'array',
      prefixItems: [{ const: 'head' }],
      items: { type: 'number', minimum: 0, maximum: 1 },
      maxItems: 4,
    },
  },
  {
    name: 'minItems / maxItems',
    schema: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 3 }, minItems: 2, maxItems: 5 },
  },
  {
    name: 'string lengths with unicode',
    schema: {
      type: 'object',
      properties: {
        short: { type: 'string', minLength: 2, maxLength: 2 },
        long: { type: 'string', minLength: 5, maxLength: 40 },
      },
      required: ['short', 'long'],
      additionalProperties: false,
    },
  },
  {
    name: 'patterns',
    schema: {
      type: 'object',
      properties: {
        sku: { type: 'string', pattern: '^[A-Z]{2}-\\d{4}$' },
        hex: { type: 'string', pattern: '^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$' },
        semver: { type: 'string', pattern: '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)$' },
        phone: { type: 'string', pattern: '^\\+?[1-9]\\d{1,14}$' },
        slug: { type: 'string', pattern: '^[a-z0-9]+(?:-[a-z0-9]+)*$', maxLength: 20 },
        contains: { type: 'string', pattern: 'ab', maxLength: 6 },
      },
      required: ['sku', 'hex', 'semver', 'phone', 'slug', 'contains'],
      additionalProperties: false,
    },
  },
  {
    name: 'number bounds: minimum/maximum/exclusive*, multipleOf',
    schema: {
      type: 'object',
      properties: {
        lat: { type: 'number', minimum: -90, maximum: 90 },
        lon: { type: 'number', minimum: -180, maximum: 180 },
        ratio: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
        neg: { type: 'integer', maximum: -1 },
        big: { type: 'integer', minimum: 1000000 },
        even: { type: 'integer', multipleOf: 2, minimum: -10, maximum: 10 },
        tiny: { type: 'number', minimum: 0.001, maximum: 0.002 },
        price: { type: 'number', exclusiveMinimum: 9.99, maximum: 10 },
      },
      required: ['lat', 'lon', 'ratio', 'neg', 'big', 'even', 'tiny', 'price'],
      additionalProperties: false,
    },
  },
  {
    name: 'unicode property names',
    schema: {
      type: 'object',
      properties: {
        名前: { type: 'string', maxLength: 4 },
        café: { type: 'boolean' },
        '😀': { type: 'integer', minimum: 0, maximum: 9 },
        'with "quote" and \\ backslash': { type: 'null' },
        'tab\there': { type: 'boolean' },
        '': { type: 'integer', minimum: 0, maximum: 1 },
      },
      required: ['名前', 'café', '😀', 'with "quote" and \\ backslash', 'tab\there', ''],
      additionalProperties: false,
    },
  },
  {
    name: 'propertyNames enum (record keyed by an enum)',
    schema: {
      type: 'object',
      propertyNames: { enum: ['red', 'green', 'blue'] },
      additionalProperties: { type: 'integer', minimum: 0, maximum: 255 },
    },
  },
  {
    name: 'minProperties / maxProperties',
    schema: { type: 'object', additionalProperties: { type: 'boolean' }, minProperties: 1, maxProperties: 3 },
  },
  {
    name: '$anchor and $id refs',
    schema: {
      $id: 'https://example.com/schemas/order',
      type: 'object',
      properties: {
        billing: { $ref: '#address' },
        shipping: { $ref: 'https://example.com/schemas/order#/$defs/address' },
      },
      required: ['billing', 'shipping'],
      additionalProperties: false,
      $defs: {
        address: {
          $anchor: 'address',
          type: 'object',
          properties: {
            street: { type: 'string', maxLength: 10 },
            zip: { type: 'string', pattern: '^\\d{5}$' },
          },
          required: ['street', 'zip'],
          additionalProperties: false,
        },
      },
    },
  },
  {
    name: 'draft-07 definitions and items array',
    schema: {
      $schema: 'http://json-schema.org/draft-07/schema#',
      definitions: {
        pt: {
          type: 'array',
          items: [{ type: 'number' }, { type: 'number' }],
          additionalItems: false,
          minItems: 2,
        },
      },
      type: 'object',
      properties: { path: { type: 'array', items: { $ref: '#/definitions/pt' }, maxItems: 3 } },
      required: ['path'],
      additionalProperties: false,
    },
  },
  {
    name: 'discriminator (pydantic)',
    schema: {
      $defs: {
        Cat: {
          properties: {
            pet_type: { const: 'cat', title: 'Pet Type', type: 'string' },
            meows: { type: 'integer' },
          },
          required: ['pet_type', 'meows'],
          title: 'Cat',
          type: 'object',
        },
        Dog: {
          properties: {
            pet_type: { const: 'dog', title: 'Pet Type', type: 'string' },
            barks: { type: 'number' },
          },
          required: ['pet_type', 'barks'],
          title: 'Dog',
          type: 'object',
        },
      },
      properties: {
        pet: {
          discriminator: { mapping: { cat: '#/$defs/Cat', dog: '#/$defs/Dog' }, propertyName: 'pet_type' },
          oneOf: [{ $ref: '#/$defs/Cat' }, { $ref: '#/$defs/Dog' }],
          title: 'Pet',
        },
        n: { title: 'N', type: 'integer' },
      },
      required: ['pet', 'n'],
      title: 'Model',
      type: 'object',
    },
  },
  {
    name: 'pydantic Optional[...] = None (anyOf with null and default)',
    schema: {
      properties: {
        name: { title: 'Name', type: 'string', maxLength: 10 },
        nickname: {
          anyOf: [{ type: 'string', maxLength: 10 }, { type: 'null' }],
          default: null,
          title: 'Nickname',
        },
        tags: { items: { type: 'string', maxLength: 5 }, title: 'Tags', type: 'array', maxItems: 3 },
        ratio: { anyOf: [{ type: 'number', minimum: 0, maximum: 1 }, { type: 'null' }], default: null },
      },
      required: ['name', 'tags'],
      title: 'User',
      type: 'object',
    },
  },
  {
    name: 'const and enum alone, mixed types',
    schema: {
      type: 'object',
      properties: { c: { const: 'fixed' }, e: { enum: [1, 'one', true, null, 2.5, { a: [] }] } },
      required: ['c', 'e'],
    },
  },
  {
    name: 'deep nesting (40 levels of objects)',
    schema: (() => {
      let schema: unknown = { type: 'integer', minimum: 0, maximum: 9 }
      for (let level = 0; level < 40; level++) {
        schema = { type: 'object', properties: { v: schema }, required: ['v'], additionalProperties: false }
      }
      return schema
    })(),
  },
  {
    name: 'deep nesting (60 levels of arrays)',
    schema: (() => {
      let schema: unknown = { type: 'boolean' }
      for (let level = 0; level < 60; level++)
        schema = { type: 'array', items: schema, minItems: 1, maxItems: 1 }
      return schema
    })(),
  },
  {
    name: 'large: 300 properties',
    schema: {
      type: 'object',
      properties: Object.fromEntries(
        Array.from({ length: 300 }, (_, index) => [
          `field_${index}`,
          index % 3 === 0
            ? { type: 'integer', minimum: 0, maximum: 9 }
            : index % 3 === 1
              ? { type: 'boolean' }
              : { enum: ['a', 'b'] },
        ]),
      ),
      required: Array.from({ length: 300 }, (_, index) => `field_${index}`).filter(
        (_, index) => index % 10 === 0,
      ),
      additionalProperties: false,
    },
  },
  {
    name: 'large: 200 $defs in a chain of refs',
    schema: {
      $defs: Object.fromEntries(
        Array.from({ length: 200 }, (_, index) => [
          `d${index}`,
          index === 199
            ? { type: 'string', maxLength: 3 }
            : {
                type: 'object',
                properties: { [`k${index}`]: { $ref: `#/$defs/d${index + 1}` } },
                additionalProperties: false,
              },
        ]),
      ),
      $ref: '#/$defs/d0',
    },
  },
  {
    name: 'large: enum of 2,000 strings',
    schema: { enum: Array.from({ length: 2000 }, (_, index) => `value-${index.toString(36)}`) },
  },

  // --- from an adversarial trial (7 December): enforced since, or enforced differently ---
  {
    name: 'OpenAPI nullable enum and const (null not listed: never written)',
    schema: {
      type: 'object',
      properties: {
        status: { type: 'string', enum: ['open', 'closed'], nullable: true },
        count: { type: 'integer', const: 3, nullable: true },
        note: { type: 'string', enum: ['a', null], nullable: true },
      },
      required: ['status', 'count', 'note'],
      additionalProperties: false,
    },
  },
  {
    name: 'unevaluatedProperties beside anyOf (the alternative written evaluates its names)',
    schema: {
      type: 'object',
      properties: { a: { type: 'integer', minimum: 0, maximum: 9 } },
      anyOf: [
        { properties: { b: { type: 'boolean' } }, required: ['b'] },
        { properties: { c: { type: 'null' } }, required: ['c'] },
      ],
      unevaluatedProperties: false,
    },
  },
  {
    name: 'OpenAPI annotations and x- extensions (FastAPI)',
    schema: {
      type: 'object',
      'x-order': ['q', 'n'],
      example: { q: 'ab', n: 1 },
      properties: {
        q: { type: 'string', maxLength: 4, example: 'abcd', 'x-go-type': 'string' },
        n: {
          type: 'integer',
          minimum: 0,
          maximum: 5,
          xml: { name: 'N' },
          externalDocs: { url: 'https://example.com' },
        },
      },
      required: ['q', 'n'],
      additionalProperties: false,
    },
  },
  {
    name: 'property names needing escapes',
    schema: {
      type: 'object',
      properties: {
        'a"b': { type: 'integer', minimum: 0, maximum: 9 },
        'c\\d': { type: 'boolean' },
        'line\nbreak': { type: 'null' },
        '\u2028ls': { type: 'string', maxLength: 2 },
        '': { const: '' },
      },
      required: ['a"b', 'c\\d', 'line\nbreak', '\u2028ls', ''],
      additionalProperties: false,
    },
  },
  {
    name: '$ref with percent-encoded and ~-escaped names',
    schema: {
      $defs: {
        'a b': { type: 'integer', minimum: 0, maximum: 3 },
        'c/d': { type: 'boolean' },
        'e~f': { type: 'null' },
      },
      type: 'array',
      prefixItems: [{ $ref: '#/$defs/a%20b' }, { $ref: '#/$defs/c~1d' }, { $ref: '#/$defs/e~0f' }],
      items: false,
      minItems: 3,
    },
  },
  {
    name: 'enum of non-string values',
    schema: { enum: [0, -1, 2.5, 1e-7, 1e21, true, false, null, 'x', [1, 'y'], { k: [null] }] },
  },

  // --- from a schema trial (7 December): keywords beside an anyOf/oneOf apply only to values of
  // their type, so an alternative of another type ignores them (they were refused in it) ---
  {
    name: 'properties beside anyOf of string and object',
    schema: {
      properties: { a: { type: 'string', maxLength: 3 } },
      required: ['a'],
      anyOf: [{ type: 'string', maxLength: 5 }, { type: 'object' }],
    },
  },
  {
    name: 'properties beside anyOf of a type list and object',
    schema: {
      properties: { a: { type: 'boolean' } },
      additionalProperties: false,
      anyOf: [{ type: ['string', 'null'], maxLength: 4 }, { type: 'object' }],
    },
  },
  {
    name: 'minLength beside anyOf of enums (the values of its type must satisfy it)',
    schema: {
      minLength: 3,
      minimum: 2,
      anyOf: [{ enum: ['ab', 'abcd', 1, 3] }, { const: 'x' }, { type: 'integer', maximum: 5 }],
    },
  },
  {
    name: 'keywords of several types beside anyOf with a $ref alternative',
    schema: {
      $defs: { short: { type: 'string', maxLength: 4 } },
      properties: { n: { type: 'integer', minimum: 0, maximum: 9 } },
      required: ['n'],
      minItems: 1,
      maxItems: 2,
      items: { type: 'boolean' },
      anyOf: [{ $ref: '#/$defs/short' }, { type: 'object', additionalProperties: false }, { type: 'array' }],
    },
  },
  {
    name: 'keywords beside nested anyOf/oneOf',
    schema: {
      properties: { a: { type: 'null' } },
      minLength: 2,
      maximum: 7,
      anyOf: [
        {
          oneOf: [
            { type: 'string', maxLength: 3 },
            { type: 'integer', minimum: 0 },
          ],
        },
        { type: 'object', required: ['a'] },
      ],
    },
  },
  // --- refused: each names its keyword ---
  {
    name: 'pattern beside an anyOf of enums (cannot be checked against the values here)',
    schema: { pattern: '^a', anyOf: [{ enum: ['ab', 'b'] }, { type: 'integer' }] },
    refused: 'schema.pattern',
  },
  {
    name: 'properties beside anyOf in a schema whose own type is string',
    schema: { type: 'string', properties: { a: { type: 'string' } }, anyOf: [{ maxLength: 3 }] },
    refused: 'schema.properties',
  },
  {
    name: 'minimum 1e400 (Infinity in JSON)',
    schema: JSON.parse('{"type":"number","minimum":1e400}'),
    refused: 'schema.minimum',
  },
  {
    name: 'minLength above 2^53 - 1',
    schema: { type: 'string', minLength: 2 ** 53 + 1 },
    refused: 'schema.minLength',
  },
  {
    name: 'zod 4 toJSONSchema: record with bounded keys',
    schema: zod4(z.record(z.string().max(6), z.number())),
    refused: 'schema.propertyNames',
  },
  {
    name: 'patternProperties',
    schema: { type: 'object', patternProperties: { '^x-': { type: 'string' } } },
    refused: 'schema.patternProperties',
  },
  {
    name: 'uniqueItems: true',
    schema: {
      type: 'object',
      properties: { tags: { type: 'array', items: { type: 'string' }, uniqueItems: true } },
    },
    refused: 'schema.properties.tags.uniqueItems',
  },
  {
    name: 'not',
    schema: { type: 'object', properties: { x: { not: { type: 'null' } } } },
    refused: 'schema.properties.x.not',
  },
  {
    name: 'if/then/else',
    // As JSON text: an object literal with a `then` key reads as a thenable.
    schema: JSON.parse(
      '{"type":"object","properties":{"a":{"type":"string"}},"if":{"properties":{"a":{"const":"x"}}},"then":{"required":["b"]}}',
    ),
    refused: 'schema.if',
  },
  { name: 'contains', schema: { type: 'array', contains: { const: 1 } }, refused: 'schema.contains' },
  {
    name: 'dependentRequired',
    schema: {
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: 'string' } },
      dependentRequired: { a: ['b'] },
    },
    refused: 'schema.dependentRequired',
  },
  {
    name: 'fractional multipleOf',
    schema: { type: 'number', multipleOf: 0.01 },
    refused: 'schema.multipleOf',
  },
  { name: 'format regex', schema: { type: 'string', format: 'regex' }, refused: 'schema.format' },
  { name: 'remote $ref', schema: { $ref: 'https://example.com/other.json' }, refused: 'schema.$ref' },
  {
    name: 'lookahead pattern',
    schema: { type: 'string', pattern: '^(?=.*\\d).{8,}$' },
    refused: 'schema.pattern',
  },
  { name: '$dynamicRef', schema: { $dynamicRef: '#meta' }, refused: 'schema.$dynamicRef' },
  { name: 'unknown keyword (typo)', schema: { type: 'string', maxlength: 3 }, refused: 'schema.maxlength' },
  // From an adversarial trial (7 December): a $ref through Object.prototype compiled as any value.
  { name: '$ref to Object.prototype', schema: { $ref: '#/__proto__' }, refused: 'schema.__proto__' },
  {
    name: 'pydantic Decimal (a lookahead in its string alternative)',
    schema: { anyOf: [{ type: 'number' }, { type: 'string', pattern: '^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$' }] },
    refused: 'schema.anyOf.1.pattern',
  },
  {
    name: 'contentMediaType alone (pydantic Json)',
    schema: { type: 'string', contentMediaType: 'application/json' },
    refused: 'schema.contentMediaType',
  },
  {
    name: 'draft-07 dependencies',
    schema: {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      dependencies: { a: ['b'] },
    },
    refused: 'schema.dependencies',
  },
  {
    name: 'unevaluatedItems',
    schema: { type: 'array', prefixItems: [{ type: 'string' }], unevaluatedItems: false },
    refused: 'schema.unevaluatedItems',
  },
]
