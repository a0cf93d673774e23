// Ablation (c) of bench/ablate.mjs: lib/histogram.js as prom-client's own Histogram, observed per request the
// way prom-client is used elsewhere. Copied over dist/lib/histogram.js in a patched copy of the build.
import { Histogram, Registry } from 'prom-client'

export class LabelledHistogram {
  #label
  #registry = new Registry()
  #histogram

  constructor (options) {
    this.#label = options.labelName
    this.#histogram = new Histogram({ name: options.name, help: options.help, labelNames: [options.labelName], buckets: [...options.buckets], registers: [this.#registry] })
  }

  observe (labelValue, value) {
    this.#histogram.observe({ [this.#label]: labelValue }, value)
  }

  exposition () {
    return ''
  }
}
