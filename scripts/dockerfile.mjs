/**
 * The part of the Dockerfile syntax our Dockerfile uses, read into stages of steps, so that
 * scripts/docker-check.mjs can replay the build and run steps outside Docker (no engine runs on our
 * machines) and test/ops/docker-steps.test.ts can check what the image promises. Anything else is refused
 * by name rather than guessed at.
 */

const KNOWN = new Set(['FROM', 'WORKDIR', 'ENV', 'COPY', 'RUN', 'USER', 'EXPOSE', 'HEALTHCHECK', 'CMD'])

/**
 * Instructions in order: `\` continuations joined, comments and blank lines dropped.
 * @param {string} text
 * @returns {Array<{ instruction: string, args: string, line: number }>}
 */
export function parseInstructions (text) {
  const out = []
  let pending = ''
  let start = 0
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = /** @type {string} */ (lines[i])
    const trimmed = line.trim()
    // Docker drops comment lines and blank lines, inside a continuation too.
    if (trimmed.startsWith('#') || trimmed === '') continue
    if (pending === '') start = i + 1
    if (trimmed.endsWith('\\')) {
      pending += trimmed.slice(0, -1).trimEnd() + ' '
      continue
    }
    const full = (pending + trimmed).trim()
    pending = ''
    const [word = ''] = full.split(/\s+/)
    const instruction = word.toUpperCase()
    if (!KNOWN.has(instruction)) {
      throw new Error(`Dockerfile line ${start}: ${instruction} is not an instruction docker-check knows`)
    }
    out.push({ instruction, args: full.slice(word.length).trim(), line: start })
  }
  if (pending !== '') throw new Error('Dockerfile ends inside a line continuation')
  return out
}

/**
 * Words as a shell-less Dockerfile reads them: whitespace-separated, double or single quotes grouping.
 * @param {string} text
 * @returns {string[]}
 */
export function words (text) {
  const out = []
  let current = ''
  let quote = ''
  let inWord = false
  for (let i = 0; i < text.length; i++) {
    const c = /** @type {string} */ (text[i])
    if (quote !== '') {
      if (c === quote) quote = ''
      else if (c === '\\' && quote === '"' && i + 1 < text.length) current += text[++i]
      else current += c
    } else if (c === '"' || c === "'") {
      quote = c
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) out.push(current)
      current = ''
      inWord = false
    } else {
      current += c
      inWord = true
    }
  }
  if (quote !== '') throw new Error(`unterminated quote in: ${text}`)
  if (inWord) out.push(current)
  return out
}

/**
 * A command in exec form (`["node", "x.js"]`) as its argv, or in shell form as `sh -c`.
 * @param {string} args
 * @returns {{ exec: boolean, argv: string[] }}
 */
export function command (args) {
  if (args.startsWith('[')) {
    const argv = JSON.parse(args)
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
      throw new Error(`not an exec-form command: ${args}`)
    }
    return { exec: true, argv }
  }
  return { exec: false, argv: ['/bin/sh', '-c', args] }
}

/**
 * `--name=value` flags in front of the rest.
 * @param {string[]} list
 * @returns {{ flags: Record<string, string>, rest: string[] }}
 */
function flagsOf (list) {
  const flags = {}
  let i = 0
  for (; i < list.length && /** @type {string} */ (list[i]).startsWith('--'); i++) {
    const [name = '', ...value] = /** @type {string} */ (list[i]).slice(2).split('=')
    flags[name] = value.join('=')
  }
  return { flags, rest: list.slice(i) }
}

/**
 * @typedef {{ instruction: 'WORKDIR', path: string }
 *   | { instruction: 'ENV', env: Record<string, string> }
 *   | { instruction: 'COPY', from?: string, sources: string[], dest: string }
 *   | { instruction: 'RUN', argv: string[], text: string }
 *   | { instruction: 'USER', user: string }
 *   | { instruction: 'EXPOSE', ports: number[] }
 *   | { instruction: 'HEALTHCHECK', options: Record<string, string>, argv: string[] }
 *   | { instruction: 'CMD', argv: string[], exec: boolean }} Step
 * @typedef {{ image: string, name?: string, steps: Step[] }} Stage
 */

/**
 * The Dockerfile as stages of typed steps.
 * @param {string} text
 * @returns {Stage[]}
 */
export function parseDockerfile (text) {
  /** @type {Stage[]} */
  const stages = []
  for (const { instruction, args, line } of parseInstructions(text)) {
    const fail = (/** @type {string} */ why) => new Error(`Dockerfile line ${line}: ${why}`)
    if (instruction === 'FROM') {
      const [image = '', as, name, ...extra] = words(args)
      if (image === '' || extra.length > 0 || (as !== undefined && (as.toUpperCase() !== 'AS' || name === undefined))) {
        throw fail(`FROM ${args} is not "image [AS name]"`)
      }
      stages.push({ image, ...(name === undefined ? {} : { name }), steps: [] })
      continue
    }
    const stage = stages.at(-1)
    if (stage === undefined) throw fail(`${instruction} before FROM`)
    if (instruction === 'WORKDIR') {
      stage.steps.push({ instruction, path: args })
    } else if (instruction === 'ENV') {
      const list = words(args)
      /** @type {Record<string, string>} */
      const env = {}
      if (list.length > 0 && !(/** @type {string} */ (list[0])).includes('=')) {
        // The legacy form: ENV NAME value with spaces
        env[/** @type {string} */ (list[0])] = list.slice(1).join(' ')
      } else {
        for (const pair of list) {
          const eq = pair.indexOf('=')
          if (eq < 1) throw fail(`ENV ${pair} is not NAME=value`)
          env[pair.slice(0, eq)] = pair.slice(eq + 1)
        }
      }
      stage.steps.push({ instruction, env })
    } else if (instruction === 'COPY') {
      const { flags, rest } = flagsOf(args.startsWith('[') ? [] : words(args))
      const paths = args.startsWith('[') ? command(args).argv : rest
      if (paths.length < 2) throw fail('COPY needs a source and a destination')
      if (Object.keys(flags).some((f) => f !== 'from')) {
        throw fail(`COPY ${Object.keys(flags).join(', ')}: only --from is replayed`)
      }
      stage.steps.push({
        instruction,
        ...(flags.from === undefined ? {} : { from: flags.from }),
        sources: paths.slice(0, -1),
        dest: /** @type {string} */ (paths.at(-1))
      })
    } else if (instruction === 'RUN') {
      stage.steps.push({ instruction, argv: command(args).argv, text: args })
    } else if (instruction === 'USER') {
      stage.steps.push({ instruction, user: args })
    } else if (instruction === 'EXPOSE') {
      stage.steps.push({ instruction, ports: words(args).map((p) => Number.parseInt(p, 10)) })
    } else if (instruction === 'HEALTHCHECK') {
      const match = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(.+)$/s.exec(args)
      if (match === null) throw fail('HEALTHCHECK must be [--options] CMD …')
      const { flags } = flagsOf(words(/** @type {string} */ (match[1])))
      stage.steps.push({ instruction, options: flags, argv: command(/** @type {string} */ (match[2])).argv })
    } else {
      const { exec, argv } = command(args)
      stage.steps.push({ instruction: 'CMD', argv, exec })
    }
  }
  if (stages.length === 0) throw new Error('Dockerfile has no FROM')
  return stages
}
