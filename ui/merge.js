// merge.js: the history of a merged view, in event-time order, paged back one step at a time.
//
// Live, the server merges the streams (`/api/events?order=time`). History has no merged
// endpoint, so the page merges it: each stream is paged back on its own (`before=`), and its
// entries wait in `held` until it is known that no stream still has an older one to bring.
// That is known for an entry whose key is at or after the *frontier*: the latest among the
// oldest keys fetched of the streams that have more history. Entries are handed out newest
// side first, each stream in its own order, so nothing is shown out of place, lost or twice.
//
// An entry's key is its `ts`; one without (an untimed line, a notice) takes the key of the
// entry before it in its stream (else the next timed one, else its arrival `time`).

/** Keys for one stream's entries, in its own order. */
function keysOf(entries) {
  const keys = new Array(entries.length);
  let last;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.ts !== undefined) last = e.ts;
    keys[i] = last;
  }
  let next;
  for (let i = entries.length - 1; i >= 0; i--) {
    if (entries[i].ts !== undefined) next = entries[i].ts;
    if (keys[i] === undefined) keys[i] = next !== undefined ? next : entries[i].time || 0;
  }
  return keys;
}

export class MergedHistory {
  /**
   * @param {string[]} ids the merged streams, in the view's order (ties go to the first)
   * @param {(id: string, params: object) => Promise<object>} read a `/lines` page of one stream
   */
  constructor(ids, read) {
    this.ids = ids;
    this.read = read;
    this.prevs = new Map(ids.map((id) => [id, undefined])); // undefined: not read yet; null: at the start
    this.held = new Map(ids.map((id) => [id, []])); // fetched, not handed out yet, stream order
  }

  /** Is there history not handed out yet? */
  more() {
    return this.ids.some((id) => this.prevs.get(id) !== null || this.held.get(id).length);
  }

  /**
   * Read what is needed and hand out the next older entries (in time order, each stamped with
   * its `stream`). The first call reads each stream's last `limit` entries; later ones read before.
   */
  async older(limit) {
    await Promise.all(
      this.ids.map(async (id) => {
        const prev = this.prevs.get(id);
        if (prev === null || this.held.get(id).length) return;
        const d = await this.read(id, prev === undefined ? { last: limit } : { before: prev, limit });
        for (const e of d.entries) e.stream = id;
        this.held.set(id, d.entries);
        // A page that moved nothing (no entries, same prev) must not loop: call it the start.
        this.prevs.set(id, !d.entries.length && d.prev === prev ? null : d.prev || null);
      }),
    );
    return this.handOut();
  }

  handOut() {
    const keys = new Map(this.ids.map((id) => [id, keysOf(this.held.get(id))]));
    let frontier = -Infinity;
    let limiter = null;
    for (const id of this.ids) {
      const ks = keys.get(id);
      if (this.prevs.get(id) === null || !ks.length) continue;
      if (ks[0] > frontier) {
        frontier = ks[0];
        limiter = id;
      }
    }
    const out = [];
    for (const [k, id] of this.ids.entries()) {
      const held = this.held.get(id);
      const ks = keys.get(id);
      // The longest tail of the stream whose keys are all at or after the frontier.
      let i = held.length;
      while (i > 0 && ks[i - 1] >= frontier) i--;
      if (id === limiter) i = 0; // its whole page is at or after its own first key
      for (let j = i; j < held.length; j++) out.push({ e: held[j], key: ks[j], k, j });
      this.held.set(id, held.slice(0, i));
    }
    out.sort((a, b) => a.key - b.key || a.k - b.k || a.j - b.j);
    return out.map((x) => x.e);
  }

  /**
   * The window dropped its oldest entries: restart each stream's history just before the
   * first of its entries still kept (`kept`, in window order), or after its last dropped one.
   */
  restartBefore(kept, dropped) {
    for (const id of this.ids) {
      const first = kept.find((e) => e.stream === id && e.cursor);
      if (first) {
        this.held.set(id, []);
        this.prevs.set(id, first.cursor);
      } else {
        const mine = dropped.filter((e) => e.stream === id && e.cursor);
        if (!mine.length) continue; // nothing of it was shown: its history is still as it was
        // Its newest dropped entry is kept waiting, and history resumes before it.
        const last = mine[mine.length - 1];
        this.held.set(id, [last]);
        this.prevs.set(id, last.cursor);
      }
    }
  }
}
