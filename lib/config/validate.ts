/**
 * Checking raw values against the schemas: strict conversion of integers and booleans, Ajv, and the list of
 * problems a `ConfigError` is made of, one per setting, in the words of its rule (never the value).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import { numbersAsText, parseBoolean, parseInteger } from './parsers.js'
import { GatewayOptionsSchema, ServerSettingsSchema } from './schema.js'
import { ruleOf, SETTINGS, type Setting } from './settings.js'

const SETTING_ORDER: string[] = Object.keys(SETTINGS)

/** Bad fields by key (first problem wins), printed in the order of the settings table. */
export class Problems {
  readonly #lines = new Map<string, string>()
  readonly #label: (key: string) => string

  constructor (label: (key: string) => string) {
    this.#label = label
  }

  add (key: string, rule: string): void {
    this.addLine(key, `${this.#label(key)}: ${rule}`)
  }

  /** A problem that is not about one setting (a stray argument): the line is taken as is. */
  addLine (key: string, line: string): void {
    if (!this.#lines.has(key)) this.#lines.set(key, line)
  }

  has (key: string): boolean {
    return this.#lines.has(key)
  }

  get size (): number {
    return this.#lines.size
  }

  list (): string[] {
    // Keys outside the table (argv problems) rank -1: first, in the order they were found.
    return [...this.#lines]
      .sort(([a], [b]) => SETTING_ORDER.indexOf(a) - SETTING_ORDER.indexOf(b))
      .map(([, line]) => line)
  }
}

/**
 * Ajv, the validator Fastify already loads for request schemas: defaults filled in, unknown keys removed, every
 * error reported. It never coerces: `runSchema` converts integers and booleans strictly, and numbers to text, first.
 */
const ajv = new Ajv({ useDefaults: true, removeAdditional: 'all', allErrors: true })
// ajv-formats is CommonJS whose types declare only `.default`; at run time both name the plugin.
addFormats.default(ajv, ['uri'])
export const validateGateway = ajv.compile(GatewayOptionsSchema)
export const validateServer = ajv.compile(ServerSettingsSchema)

/** Checks `input` with `validate`, collecting one problem per bad field (in `settings`' words, never the value). */
export function runSchema (
  validate: ValidateFunction,
  settings: Record<string, Setting>,
  input: Record<string, unknown>,
  problems: Problems
): Record<string, unknown> {
  // `{ upstreamAs: undefined }` means "not set": dropped, so that required fields read as missing, not mistyped.
  const value = Object.fromEntries(Object.entries(input).filter(([, raw]) => raw !== undefined))
  for (const [key, setting] of Object.entries(settings)) {
    const raw = value[key]
    if (raw === undefined) continue
    if (setting.kind !== 'integer' && setting.kind !== 'boolean') {
      value[key] = numbersAsText(raw)
      continue
    }
    const converted = setting.kind === 'boolean' ? parseBoolean(raw) : parseInteger(raw)
    if (converted === undefined) {
      problems.add(key, ruleOf(setting))
      delete value[key]
    } else {
      value[key] = converted
    }
  }
  if (validate(value)) return value
  for (const error of validate.errors as ErrorObject[]) {
    if (error.keyword === 'required') {
      problems.add(String(error.params.missingProperty), 'is required')
    } else {
      // `/allowedOrigins/3` → `allowedOrigins`: the whole setting is named, whichever part of it is wrong.
      const key = error.instancePath.split('/')[1] as string
      problems.add(key, ruleOf(settings[key] as Setting))
    }
  }
  return value
}
