/**
 * The TypeBox schemas of the gateway options and the server settings, derived from the settings table: each
 * setting's kind picks its shape, and its bounds, default and help become the schema's.
 */
import { Type } from 'typebox'
import {
  GATEWAY_SETTINGS,
  LOG_LEVELS,
  MAX_LIST,
  MIN_SECRET_LENGTH,
  SCOPE_TOKEN,
  SERVER_SETTINGS,
  type Kind,
  type Setting
} from './settings.js'

/** The options without the keys a setting leaves out. */
function defined<T extends object> (options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as T
}

/** The default and the description, which every kind carries from the table. */
const described = (s: Setting) => defined({ default: s.default, description: s.help })

const httpUrl = (s: Setting) =>
  Type.String({ format: 'uri', pattern: '^[hH][tT][tT][pP][sS]?://', maxLength: 2048, description: s.help })

const SCHEMA_OF_KIND = {
  text: (s: Setting) => Type.Optional(Type.String(defined({
    minLength: s.minLength,
    maxLength: s.maxLength,
    pattern: s.pattern,
    ...described(s)
  }))),
  url: (s: Setting) => Type.Optional(httpUrl(s)),
  'required-url': (s: Setting) => httpUrl(s),
  integer: (s: Setting) => Type.Optional(Type.Integer(defined({
    minimum: s.minimum,
    maximum: s.maximum,
    ...described(s)
  }))),
  boolean: (s: Setting) => Type.Optional(Type.Boolean(described(s))),
  // A comma-separated string or an array; split, normalised and checked entry by entry in gateway.ts.
  list: (s: Setting) => Type.Optional(Type.Union([
    Type.String({ maxLength: 16_384 }),
    Type.Array(Type.String({ maxLength: 2048 }), { maxItems: MAX_LIST })
  ], described(s))),
  scopes: (s: Setting) => Type.Optional(Type.Union([
    Type.String({ maxLength: 2048 }),
    Type.Array(Type.String({ pattern: SCOPE_TOKEN, maxLength: 256 }), { maxItems: 64 })
  ], described(s))),
  secrets: (s: Setting) => Type.Optional(Type.Union([
    Type.String({ minLength: MIN_SECRET_LENGTH }),
    Type.Array(Type.String({ minLength: MIN_SECRET_LENGTH }), { minItems: 1 })
  ], described(s))),
  headers: (s: Setting) => Type.Optional(Type.Union([
    Type.String({ maxLength: 65_536 }),
    Type.Array(Type.String({ maxLength: 8192 }), { maxItems: MAX_LIST }),
    Type.Record(Type.String(), Type.String({ maxLength: 8192 }))
  ], described(s))),
  'metrics-path': (s: Setting) => Type.Optional(Type.Union([
    Type.String({ pattern: '^(off|/[A-Za-z0-9._~/-]{0,255})$' }),
    Type.Literal(false)
  ], described(s))),
  'trust-proxy': (s: Setting) =>
    Type.Optional(Type.Union([Type.Boolean(), Type.String({ minLength: 1 })], described(s))),
  'log-level': (s: Setting) => Type.Optional(Type.Union(LOG_LEVELS.map((level) => Type.Literal(level)), described(s)))
} satisfies Record<Kind, (s: Setting) => unknown>

type SchemasOf<T extends Record<string, Setting>> = { [K in keyof T]: ReturnType<typeof SCHEMA_OF_KIND[T[K]['kind']]> }

/** One schema per setting, typed by its kind, so that `Static` gives each option its own type. */
function schemasOf<T extends Record<string, Setting>> (settings: T): SchemasOf<T> {
  return Object.fromEntries(
    Object.entries(settings).map(([key, s]) => [key, SCHEMA_OF_KIND[s.kind](s)])
  ) as SchemasOf<T>
}

/**
 * The options of the gateway plugin, camelCase. The standalone server builds the same object from flags and
 * environment variables, so both ways in go through one validation (`parseGatewayOptions`).
 */
export const GatewayOptionsSchema = Type.Object(schemasOf(GATEWAY_SETTINGS))

export const ServerSettingsSchema = Type.Object(schemasOf(SERVER_SETTINGS))
