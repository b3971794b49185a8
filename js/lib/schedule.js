/**
 * When the panel's work runs: a burst of events becomes one call (debounced), and a reload never overlaps
 * another (oneAtATime), so a queue of prompts finishing costs one round of requests, not one per event.
 */

/** `callback` once `ms` have passed without another call. */
export function debounced(callback, ms) {
  let timer = 0;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(callback, ms);
  };
}

/**
 * `work` (async, handling its own errors) wrapped so that it never runs twice at once: a call while it runs
 * asks for one more run after it, however many calls came meanwhile, and the promise it answers covers that run.
 */
export function oneAtATime(work) {
  let running = null;
  let again = false;
  async function drain() {
    try {
      do {
        again = false;
        await work();
      } while (again);
    } finally {
      running = null;
    }
  }
  return () => {
    if (running) again = true;
    else running = drain();
    return running;
  };
}
