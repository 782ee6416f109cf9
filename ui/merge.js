// merge.js: the history of a merged view, in event-time order, paged back one step at a time.
//
// The server merges it (`/api/lines?streams=a,b`, docs/API.md): each page comes in time order,
// its entries stamped with their `stream`, and its `prev` is a composite position (one cut per
// stream) to page further back from. When the window drops its oldest entries, the cut before
// what it keeps is made here by the server's rule: `ID~C` before a stream's first kept entry,
// `ID:C` after its last dropped one, else the stream's cut as it was. So paging back again
// loses and doubles nothing. (The page used to page each stream back on its own and merge them
// here; the server's page does the same with less code and one request per step.)

/** The components of a composite position: stream id -> `ID:C` or `ID~C`. */
function parts(composite) {
  const out = new Map();
  for (const part of (composite || "").split(",")) {
    // The last separator: cursors hold neither, and a hub's ids hold `~` (HOST~FILE).
    const k = Math.max(part.lastIndexOf(":"), part.lastIndexOf("~"));
    if (k > 0) out.set(part.slice(0, k), part);
  }
  return out;
}

/** Each stream's cursor in a composite's `ID:C` components (a `next`: the connection's start). */
export function cursorsOf(composite) {
  const out = new Map();
  for (const [id, part] of parts(composite)) {
    if (part[id.length] === ":") out.set(id, part.slice(id.length + 1));
  }
  return out;
}

export class MergedHistory {
  /**
   * @param {string[]} ids the merged streams, in the view's order (ties go to the first)
   * @param {(params: object) => Promise<object>} read a page of `/api/lines?streams=…`
   */
  constructor(ids, read) {
    this.ids = ids;
    this.read = read;
    this.prev = undefined; // undefined: not read yet; null: at the start of every stream
    this.cuts = new Map(); // each stream's latest known cut, for restartBefore
  }

  /** Is there history not handed out yet? */
  more() {
    return this.prev !== null;
  }

  /**
   * Read and hand out the next older entries, in time order. The first call reads the last
   * `limit` entries of the streams together; later ones read before the last `prev`.
   */
  async older(limit) {
    if (this.prev === null) return [];
    const first = this.prev === undefined;
    const d = await this.read(first ? { last: limit } : { before: this.prev, limit });
    if (first) for (const [id, part] of parts(d.next)) this.cuts.set(id, part);
    this.prev = d.prev || null;
    for (const [id, part] of parts(d.prev)) this.cuts.set(id, part);
    return d.entries;
  }

  /**
   * The window dropped its oldest entries (`dropped`; `kept`, in window order, remain):
   * history resumes just before what it keeps.
   */
  restartBefore(kept, dropped) {
    const comps = this.ids.map((id) => {
      const first = kept.find((e) => e.stream === id && e.cursor);
      if (first) return `${id}~${first.cursor}`;
      const mine = dropped.filter((e) => e.stream === id && e.cursor);
      if (mine.length) return `${id}:${mine[mine.length - 1].cursor}`;
      return this.cuts.get(id);
    });
    if (comps.every((c) => c)) this.prev = comps.join(",");
  }
}
