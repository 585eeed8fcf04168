// Random JSON Schemas for structured-output tests: every string, array and object is bounded
// (maxLength, maxItems, additionalProperties: false), so a walk with random tokens ends.
import fc from 'fast-check'

const names = fc.constantFrom('id', 'name', 'a', 'ab', 'état', 'x y', 'quote"d', 'n0', 'tags', 'list')
const stringSchema = fc.oneof(
  fc.record({ type: fc.constant('string'), maxLength: fc.integer({ min: 1, max: 8 }) }),
  fc.record({
    type: fc.constant('string'),
    minLength: fc.integer({ min: 1, max: 3 }),
    maxLength: fc.integer({ min: 3, max: 6 }),
  }),
  fc.record({ type: fc.constant('string'), format: fc.constantFrom('date', 'date-time', 'uuid') }),
  fc.record({ type: fc.constant('string'), format: fc.constant('email'), maxLength: fc.constant(24) }),
  fc.record({
    type: fc.constant('string'),
    pattern: fc.constantFrom('^[a-z]{2,5}$', '^\\d{3}-\\d{2}$', '^(yes|no|maybe)$', '^[A-Z][a-z]*$'),
    maxLength: fc.constant(8),
  }),
  fc.record({
    type: fc.constant('string'),
    pattern: fc.constantFrom('[0-9]', 'ab', 'é'),
    maxLength: fc.constant(6),
  }),
  // A pattern or format with minLength: one intersection automaton that also counts characters.
  fc.record({
    type: fc.constant('string'),
    pattern: fc.constantFrom('^[a-z]{2,5}$', '^(yes|no|maybe)$', '^(é|ab)+$'),
    minLength: fc.constant(3),
    maxLength: fc.constant(7),
  }),
  fc.record({
    type: fc.constant('string'),
    format: fc.constant('email'),
    minLength: fc.constant(9),
    maxLength: fc.constant(16),
  }),
  fc.record({
    enum: fc.uniqueArray(fc.constantFrom('red', 'green', 'blue', 're', 'été', 'a"b', 'x\\y'), {
      minLength: 1,
      maxLength: 4,
    }),
  }),
)
const numberSchema = fc.oneof(
  fc.record({ type: fc.constant('integer') }),
  fc.record({
    type: fc.constant('integer'),
    minimum: fc.integer({ min: -50, max: 50 }),
    maximum: fc.integer({ min: 50, max: 500 }),
  }),
  fc.record({ type: fc.constant('integer'), exclusiveMinimum: fc.constant(0), maximum: fc.constant(3) }),
  fc.record({
    type: fc.constant('number'),
    minimum: fc.constantFrom(-1.5, 0, 2.25),
    maximum: fc.constantFrom(2.5, 10, 1e6),
  }),
  fc.record({ type: fc.constant('number'), exclusiveMaximum: fc.constantFrom(0, 1) }),
  fc.record({ type: fc.constant('number') }),
)
const scalarSchema = fc.oneof(
  stringSchema,
  numberSchema,
  fc.constant({ type: 'boolean' }),
  fc.constant({ type: 'null' }),
  fc.record({ const: fc.constantFrom(1, 'fixed', true, null, [1, 2], { k: 'v' }) }),
  fc.record({ enum: fc.constant([1, 'one', null, false, 2.5]) }),
)

export const { schema: randomSchema } = fc.letrec<{ schema: unknown; object: unknown; array: unknown }>(
  (tie) => ({
    schema: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      scalarSchema,
      tie('object'),
      tie('array'),
      fc.record({ anyOf: fc.tuple(scalarSchema, tie('object')) }),
      fc.record({ type: fc.constant(['string', 'null']), maxLength: fc.integer({ min: 0, max: 5 }) }),
      scalarSchema
        .map((inner) => ({ ...(inner as object), nullable: true }))
        .filter((inner) => !('enum' in inner) && !('const' in inner)),
    ),
    object: fc
      .uniqueArray(fc.tuple(names, tie('schema'), fc.boolean()), {
        minLength: 0,
        maxLength: 3,
        selector: ([name]) => name,
      })
      .map((entries) => ({
        type: 'object',
        properties: Object.fromEntries(entries.map(([name, schema]) => [name, schema])),
        required: entries.filter(([, , required]) => required).map(([name]) => name),
        additionalProperties: false,
      })),
    array: fc.oneof(
      fc.record({
        type: fc.constant('array'),
        items: tie('schema'),
        maxItems: fc.integer({ min: 0, max: 3 }),
      }),
      fc.record({
        type: fc.constant('array'),
        items: tie('schema'),
        minItems: fc.constant(1),
        maxItems: fc.constant(2),
      }),
      fc.record({
        type: fc.constant('array'),
        prefixItems: fc.tuple(scalarSchema, scalarSchema),
        items: fc.constant(false),
        minItems: fc.constant(1),
      }),
    ),
  }),
)
