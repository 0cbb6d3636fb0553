/**
 * node-llama-cpp's native context object (`LlamaContext._ctx`), which our guards wrap. It is not
 * public API: the version is pinned, and a guard refuses to start if the shape it relies on has
 * changed.
 */

export type NativeMethod = (...args: unknown[]) => Promise<unknown>;

export interface NativeContext {
  decodeBatch: NativeMethod;
  sampleToken: NativeMethod;
}

/** The native context of a node-llama-cpp `LlamaContext`; `guard` names the file that needs it. */
export function nativeContextOf(context: object, guard: string): NativeContext {
  const native = (context as { _ctx?: unknown })._ctx;
  const shaped = typeof native === 'object' && native !== null
    && typeof (native as Partial<NativeContext>).decodeBatch === 'function'
    && typeof (native as Partial<NativeContext>).sampleToken === 'function';
  if (!shaped) throw new Error(`node-llama-cpp changed: its context has no _ctx.decodeBatch / _ctx.sampleToken to guard (see ${guard})`);
  return native as NativeContext;
}

/** Replace one of its methods: an own property shadows the native one (the prototype's are read-only to assignment). */
export function overrideNative(target: NativeContext, name: keyof NativeContext, method: NativeMethod): void {
  Object.defineProperty(target, name, { value: method, writable: false, configurable: true, enumerable: false });
}
