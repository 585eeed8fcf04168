// A minimal typed event emitter (the SDK runs in browsers, Workers and Node: no EventEmitter).
// A throwing listener must not break a generation, so listener errors are reported, not raised.

export type Listener<T> = (event: T) => void

export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>()

  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    if (typeof listener !== 'function')
      throw new TypeError(`on(${String(name)}): the listener must be a function.`)
    let set = this.#listeners.get(name)
    if (!set) {
      set = new Set()
      this.#listeners.set(name, set)
    }
    set.add(listener as Listener<never>)
    return () => set.delete(listener as Listener<never>)
  }

  emit<K extends keyof Events>(name: K, event: Events[K]): void {
    for (const listener of this.#listeners.get(name) ?? []) {
      try {
        ;(listener as Listener<Events[K]>)(event)
      } catch (error) {
        // Surface it without unwinding the caller's generation.
        console.error(`ondevice: a '${String(name)}' listener threw`, error)
      }
    }
  }

  clear(): void {
    this.#listeners.clear()
  }
}
