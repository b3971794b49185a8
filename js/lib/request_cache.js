/**
 * Answers of the panel's reads, kept for a short while so that switching back to a tab shown a moment ago
 * fetches nothing. The panel clears it whenever what it holds may have changed (a prompt finished, an action,
 * Refresh). It keeps the promise, so two views asking at once share one request, and a failed read is dropped.
 */
export function requestCache(ttlMs) {
  const entries = new Map();
  return {
    /** The answer of `read()` for `key`, from the cache while it is younger than the time to live. */
    get(key, read) {
      const entry = entries.get(key);
      if (entry && performance.now() - entry.at < ttlMs) return entry.answer;
      const answer = read();
      entries.set(key, { answer, at: performance.now() });
      answer.catch(() => entries.get(key)?.answer === answer && entries.delete(key));
      return answer;
    },
    clear() {
      entries.clear();
    },
  };
}
