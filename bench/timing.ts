/**
 * Best of `reps` runs: on a shared 2-core machine the slower runs mostly time other processes, and
 * the minimum is the figure that repeats.
 */
export async function bestOf(fn: () => unknown, reps: number): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    await fn();
    best = Math.min(best, performance.now() - s);
  }
  return best;
}

/**
 * Best of `rounds` runs of each function, taken in turns (a, b, a, b, …): a ratio between two
 * timings is only fair when both saw the same moments of a noisy machine.
 */
export async function bestOfInTurns(fns: readonly (() => unknown)[], rounds: number): Promise<number[]> {
  const best = fns.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    for (const [i, fn] of fns.entries()) {
      const s = performance.now();
      await fn();
      best[i] = Math.min(best[i]!, performance.now() - s);
    }
  }
  return best;
}
