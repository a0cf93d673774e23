interface Series {
  /** Per bucket, not cumulative; the last one counts what is above every bound (+Inf). */
  counts: number[]
  sum: number
  count: number
}

/**
 * A Prometheus histogram with one label, for what is observed on every proxied request. Observing is a
 * Map lookup, a loop over the bounds and three additions: no label validation, hashing or closure per
 * call, which made prom-client's `observe()` most of the proxy's per-request metrics cost. Rendered in
 * the text exposition format (the same lines prom-client writes) when metrics are scraped.
 */
export class LabelledHistogram {
  readonly #name: string
  readonly #help: string
  readonly #label: string
  readonly #bounds: readonly number[]
  readonly #series = new Map<string, Series>()

  constructor (options: { name: string, help: string, labelName: string, buckets: readonly number[] }) {
    this.#name = options.name
    this.#help = options.help
    this.#label = options.labelName
    this.#bounds = [...options.buckets].sort((a, b) => a - b)
  }

  observe (labelValue: string, value: number): void {
    let series = this.#series.get(labelValue)
    if (series === undefined) {
      series = { counts: new Array<number>(this.#bounds.length + 1).fill(0), sum: 0, count: 0 }
      this.#series.set(labelValue, series)
    }
    let i = 0
    while (i < this.#bounds.length && value > (this.#bounds[i] as number)) i++
    series.counts[i] = (series.counts[i] as number) + 1
    series.sum += value
    series.count++
  }

  /** `# HELP`, `# TYPE`, then per label value its cumulative buckets, sum and count. */
  exposition (): string {
    const lines = [`# HELP ${this.#name} ${this.#help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${this.#name} histogram`]
    for (const [value, series] of this.#series) {
      const label = `${this.#label}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`
      let cumulative = 0
      for (const [i, bound] of [...this.#bounds, Infinity].entries()) {
        cumulative += series.counts[i] as number
        lines.push(`${this.#name}_bucket{le="${bound === Infinity ? '+Inf' : String(bound)}",${label}} ${cumulative}`)
      }
      lines.push(`${this.#name}_sum{${label}} ${series.sum}`, `${this.#name}_count{${label}} ${series.count}`)
    }
    return `${lines.join('\n')}\n`
  }
}
