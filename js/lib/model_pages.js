/**
 * The Models tab's rows, read from the server a page at a time as they scroll into view, never the whole
 * list (8.9 MB at 20,000 models). The server filters (type, tier, the search) and sorts (most removable tier
 * first, then name); how many rows each section holds comes from the /disk totals read with the same search.
 */
import { fetchModelPage } from "./api.js";

/** Rows per request: a screenful of rows and the windowed list's buffer on either side, with room to scroll. */
export const PAGE_SIZE = 50;

/**
 * A list of `length` rows for the windowed list: `slice(start, end)` asks for the pages holding those rows,
 * each once, and gives null for a row not read yet; `onChange(callback)` hears when rows arrive or a read
 * failed (`error` then says why). `readPage(offset, limit)` answers `{ rows, total }`; the total the server
 * gives wins over `length`, which came from the totals.
 */
export function pagedRows(length, readPage) {
  const pages = new Map();
  const asked = new Set();
  let changed = () => {};

  function ask(page) {
    if (asked.has(page)) return;
    asked.add(page);
    readPage(page * PAGE_SIZE, PAGE_SIZE).then(({ rows, total }) => {
      pages.set(page, rows);
      list.length = total;
      changed();
    }, (error) => {
      list.error = error.message || String(error);  // not asked again until the next load (Refresh)
      changed();
    });
  }

  const list = {
    length,
    error: null,
    slice(start, end) {
      for (let page = Math.floor(start / PAGE_SIZE); page * PAGE_SIZE < end; page += 1) ask(page);
      return Array.from({ length: Math.max(0, end - start) }, (_, i) => rowAt(start + i));
    },
    onChange(callback) {
      changed = callback;
    },
  };
  const rowAt = (index) => pages.get(Math.floor(index / PAGE_SIZE))?.[index % PAGE_SIZE] ?? null;
  return list;
}

/**
 * The rows of one load of the Models tab: `rowsOf(filter, length)` is the pagedRows of the models matching
 * `filter` ({type, status} as /models takes them) and the load's search. `read` is the panel's cached read,
 * so a page shown a moment ago comes back without a request. In a range view (`allTime` set), each page is
 * read for all days too, so a row unused in the range says when it was last used before.
 */
export function modelPages({ read, range, allTime, query }) {
  const page = (view, filter, offset, limit) => read("models", fetchModelPage, { ...view, ...filter, q: query || undefined, offset, limit });
  return (filter, length) => pagedRows(length, async (offset, limit) => {
    const [shown, ever] = await Promise.all([page(range, filter, offset, limit), allTime && page(allTime, filter, offset, limit)]);
    return { rows: withLastEver(rowsOfSections(shown.sections), ever && rowsOfSections(ever.sections)), total: shown.total };
  });
}

/** One model's key, the same whichever page or view it came from: the selection is keyed by it. */
export const modelKey = (model) => `${model.model_type}\u0000${model.model_name}`;

/** [{model_type, models}] as one list of rows, each knowing its type. */
function rowsOfSections(sections) {
  return sections.flatMap(({ model_type, models }) => models.map((model) => ({ ...model, model_type })));
}

/** Each row with `lastEver`, its last use over all days (null outside a range view). */
function withLastEver(rows, allTimeRows) {
  const lastEver = new Map((allTimeRows ?? []).map((model) => [modelKey(model), model.last_seen]));
  return rows.map((model) => ({ ...model, lastEver: lastEver.get(modelKey(model)) ?? null }));
}
