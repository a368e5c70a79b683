// One change at a time per key (a device, a container, a network namespace):
// each call runs after every earlier one for the same key in this process, so
// two faults applied or reverted at once never interleave their steps. A call
// that fails does not stop the ones queued behind it.
export type KeyedSerial = <T>(key: string, fn: () => Promise<T>) => Promise<T>;

export function keyedSerial(): KeyedSerial {
  const queues = new Map<string, Promise<unknown>>();
  return (key, fn) => {
    const run = (queues.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    queues.set(key, tail);
    // Nothing queued behind it once it settles: the key is forgotten.
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key);
    });
    return run;
  };
}
