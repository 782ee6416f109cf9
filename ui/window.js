// window.js: the window of one view's entries, the page's one piece of real logic.
//
// A window is a contiguous run of a view's entries (one stream, or several merged), in stream
// order, bounded to RETAIN entries. `headPrev` is the cursor to page further back (null at the
// file's first line). `tailComplete` says whether the window reaches the live end: while it
// does, live entries are appended; while it does not (far-away entries were dropped to bound
// memory, or the view opened around a linked line), live entries wait in `pending` and are
// merged, de-duplicated by cursor, when the window is extended back to the end.
//
// It owns the entries and the fetches that extend them; it does not own the connection (which
// holds its own cursors), the scroller, or what "following" means: the page tells it through
// hooks. Every entry gets a `seq`, increasing in window order, which the scroller anchors on.
// A closed window (the user opened another view) ignores whatever its fetches bring back.
//
// A view may carry a query (`q`, filtered on the server): every read asks with it, and the
// window pages from the server's `prev`/`next` (the last entries *examined*), not from its own
// first and last entries, since a sparse query's page may end far from its last match, or
// hold none when the scan budget ran out. A window may also open at a time (`at`): the page
// of entries from the first record at or after it, and the page before.
//
// A merged view reaches the live end always: its history comes in time order from
// `MergedHistory` (merge.js), paged back up to RETAIN entries (never trimmed at the back), and
// it goes to a time by paging back until it holds that time.

import { MergedHistory, cursorsOf } from "./merge.js";

const RETAIN = 100000; // entries kept in memory per view
const SLACK = 10000; // trim in chunks, not on every append
const PENDING_MAX = 50000;
const PAGE = 5000; // history and catch-up page size
const START_PAGE = 10000; // page size when paging all the way back to the first line
const AROUND = 500; // entries each side of a linked line
const RETRY_AFTER_FAILURE_MS = 2000;
const REFUSED = Symbol("refused"); // loadAround: the linked cursor is not one of the stream's

class ClosedError extends Error {}

function linesUrl(id, params) {
  const q = new URLSearchParams(params);
  return `api/streams/${encodeURIComponent(id)}/lines?${q}`;
}

function lastOf(entries) {
  return entries.length ? entries[entries.length - 1].cursor : null;
}

export class EntryWindow {
  /**
   * @param {string[]} ids the streams of this view (several: a merged view)
   * @param {object} hooks
   * @param {(path: string) => Promise<object>} hooks.api GET a JSON answer (throws on errors)
   * @param {(entries: object[]) => void} hooks.added entries just entered the window
   * @param {(anchor: boolean) => void} hooks.changed the entries changed; `anchor`: keep what
   *   is on screen where it is
   * @param {() => void} hooks.settled a fetch ended (the page may want the next one)
   * @param {() => boolean} hooks.following is the page following the live end?
   * @param {() => number|null} hooks.shownSeq `seq` of the first entry on screen
   * @param {(msg: string) => void} hooks.warn a fetch failed
   */
  constructor(ids, hooks, q) {
    this.ids = ids;
    this.q = q || "";
    this.merged = ids.length > 1;
    this.hooks = hooks;
    this.entries = [];
    this.headPrev = null;
    this.tailNext = null; // where the next newer page starts, when the window stops short of the end
    this.tailComplete = true;
    this.pending = [];
    this.pendingEpoch = 0; // bumped when `pending` overflowed and was forgotten
    this.loadingHead = false;
    this.loadingTail = false;
    this.failedAt = -1e9;
    this.closed = false;
    this.seqHi = 0;
    this.seqLo = 0;
    this.history = null; // a merged view's history (merge.js)
  }

  /** Forget this view: fetches still under way are ignored when they come back. */
  close() {
    this.closed = true;
  }

  async api(id, params, unfiltered) {
    const p = this.q && !unfiltered ? { ...params, q: this.q } : params;
    const d = await this.hooks.api(linesUrl(id, p));
    if (this.closed) throw new ClosedError();
    return d;
  }

  /** Does the window hold the stream's first line? */
  atStart() {
    return this.headPrev === null;
  }

  /** Does the window reach the live end (live entries are appended as they come)? */
  reachesEnd() {
    return this.tailComplete;
  }

  busy() {
    return this.loadingHead || this.loadingTail;
  }

  /** An older page can be fetched now (one stream, not at its start, no fetch under way). */
  canLoadOlder() {
    if (this.merged && this.entries.length >= RETAIN) return false;
    return !!this.headPrev && !this.loadingHead && !this.recentlyFailed();
  }

  /** A newer page can be fetched now (the window stops short of the live end). */
  canLoadNewer() {
    return !this.tailComplete && !this.loadingTail && !this.recentlyFailed();
  }

  recentlyFailed() {
    return performance.now() - this.failedAt < RETRY_AFTER_FAILURE_MS;
  }

  /** The note shown above the first line, or "". */
  topNote() {
    if (this.merged && this.headPrev && this.entries.length >= RETAIN) {
      return "merged view holds 100,000 entries · open a single stream to go further back";
    }
    if (this.merged && this.headPrev === null && this.entries.length) return "start of the streams";
    if (this.headPrev === null && this.entries.length) return this.q ? "start of file · no earlier matches" : "start of file";
    if (this.headPrev === null && this.q) return "no matches";
    if (this.headPrev) return this.q ? "searching earlier lines…" : "loading earlier lines…";
    return "";
  }

  stamp(e, stream) {
    if (stream && this.merged) e.stream = stream;
    return e;
  }

  add(entries, where) {
    if (!entries.length) return;
    if (where === "front") {
      for (let i = entries.length - 1; i >= 0; i--) entries[i].seq = --this.seqLo;
      this.entries = entries.concat(this.entries);
    } else {
      for (const e of entries) e.seq = ++this.seqHi;
      if (entries.length > 2000) this.entries = this.entries.concat(entries);
      else for (const e of entries) this.entries.push(e);
    }
    this.hooks.added(entries);
  }

  firstCursor() {
    for (const e of this.entries) if (e.cursor) return e.cursor;
    return null;
  }

  lastCursor() {
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i].cursor) return this.entries[i].cursor;
    return null;
  }

  /**
   * Load the view's first entries: the last lines of each stream, or (one stream) the lines
   * around `linked`. Returns `{cursors, jump}` for the connection to start from, or null when
   * the window was closed meanwhile. `jump` is undefined without `linked`, else the linked
   * entry (null when it is gone); a window opened around a line does not reach the live end.
   * A `linked` the server refuses as a cursor (a mistyped link) opens the end, with a warning.
   * With `at` (epoch ms, one stream) the window opens at that time instead, and `jump` is the
   * first entry at or after it.
   */
  async load(initial, linked, at) {
    const cursors = new Map();
    let jump;
    try {
      if (this.merged && at != null) {
        await this.loadLast(initial, cursors);
        jump = await this.backTo(at);
      } else if (!this.merged && at != null) jump = await this.loadAt(at, cursors);
      else if (!this.merged && linked) jump = await this.loadAround(linked, cursors);
      if (jump === REFUSED) jump = undefined;
      if (jump === undefined && at == null) await this.loadLast(initial, cursors);
    } catch (e) {
      if (this.closed) return null;
      this.hooks.warn(`could not load: ${e.message}`);
      for (const id of this.ids) if (!cursors.has(id)) cursors.set(id, null);
    }
    if (this.closed) return null;
    return { cursors, jump };
  }

  async loadLast(initial, cursors) {
    if (this.merged) {
      this.history = new MergedHistory(this.ids, async (p) => {
        const q = new URLSearchParams({ streams: this.ids.join(","), ...p });
        if (this.q) q.set("q", this.q);
        const d = await this.hooks.api(`api/lines?${q}`);
        if (this.closed) throw new ClosedError();
        // The first page holds the streams' last entries: the connection starts after it.
        if (p.last !== undefined) for (const [id, c] of cursorsOf(d.next)) cursors.set(id, c);
        return d;
      });
      this.add(await this.history.older(initial), "back");
      this.headPrev = this.history.more() ? "merged" : null;
      return;
    }
    const d = await this.api(this.ids[0], { last: initial });
    cursors.set(this.ids[0], d.next || lastOf(d.entries));
    this.headPrev = d.prev;
    this.add(d.entries, "back");
  }

  /**
   * A merged view: page back until the window holds time `at` (or its start, or RETAIN
   * entries). Returns the first timed entry at or after `at`, or null.
   */
  async backTo(at) {
    const reached = () => this.entries.some((e) => e.ts !== undefined && e.ts < at);
    while (!reached() && this.history.more() && this.entries.length < RETAIN) {
      const got = await this.history.older(PAGE);
      this.add(got, "front");
      this.headPrev = this.history.more() ? "merged" : null;
    }
    if (!reached() && this.history.more()) this.hooks.warn("too far back for a merged view: showing the oldest entries it holds");
    return this.entries.find((e) => e.ts !== undefined && e.ts >= at) || null;
  }

  async loadAt(at, cursors) {
    const id = this.ids[0];
    // The connection starts at the live end (read without the query: the end is the end).
    const tail = await this.api(id, { last: 1 }, true);
    cursors.set(id, tail.next || lastOf(tail.entries));
    let after = await this.api(id, { at: String(at), limit: AROUND });
    let head;
    if (after.entries.length) {
      head = after.prev ? await this.api(id, { before: after.prev, limit: AROUND }) : { entries: [], prev: null };
      this.tailNext = after.next;
    } else {
      this.hooks.warn("nothing at or after that time: showing the end");
      head = await this.api(id, { last: AROUND });
      after = { entries: [] };
      this.tailNext = head.next;
    }
    this.headPrev = head.prev;
    this.add(head.entries.concat(after.entries), "back");
    this.tailComplete = false;
    return after.entries.length ? after.entries[0] : null;
  }

  async loadAround(c, cursors) {
    const id = this.ids[0];
    const tail = await this.api(id, { last: 1 }, true);
    cursors.set(id, tail.next || lastOf(tail.entries));
    let head;
    let after;
    try {
      after = await this.api(id, { after: c, limit: AROUND });
    } catch (e) {
      if (this.closed) throw e;
      // Not a cursor of this stream (an old or mistyped link): the view opens at the end.
      this.hooks.warn(`that link names no line of this log (${e.message}): showing the end`);
      return REFUSED;
    }
    if (after.entries.length) {
      head = await this.api(id, { before: after.entries[0].cursor, limit: AROUND });
    } else {
      head = await this.api(id, { last: AROUND });
      after = { entries: [] };
    }
    this.headPrev = head.prev;
    this.tailNext = after.next || head.next || null;
    this.add(head.entries.concat(after.entries), "back");
    // Whatever was appended after the cursor taken for the connection arrives live (pending).
    this.tailComplete = false;
    const i = this.entries.findIndex((e) => e.cursor === c);
    if (i < 0) this.hooks.warn("that line is no longer available");
    return i >= 0 ? this.entries[i] : null;
  }

  /** Entries of `stream` from the live connection. */
  live(stream, entries) {
    const es = this.merged ? entries.map((e) => this.stamp(e, stream)) : entries;
    if (this.tailComplete) {
      this.add(es, "back");
      this.trim();
    } else {
      for (const e of es) this.pending.push(e);
      if (this.pending.length > PENDING_MAX) {
        // Too much to hold: forget it, the catch-up fetch re-reads it from the file.
        this.pending = [];
        this.pendingEpoch++;
      }
    }
    this.hooks.changed(false);
  }

  /** A row made by the page (a stream's state changed), placed as a live entry would be. */
  addLocal(e, stream) {
    this.stamp(e, stream);
    if (this.tailComplete) this.add([e], "back");
    else this.pending.push(e);
    this.hooks.changed(false);
  }

  /** Keep at most RETAIN entries, dropping the side away from what is on screen. */
  trim(prefer) {
    const over = this.entries.length - RETAIN;
    if (over <= SLACK && !(over > 0 && prefer === "force")) return;
    const shown = this.hooks.shownSeq();
    const shownSeq = shown === null ? this.seqHi : shown;
    const mid = this.entries[Math.floor(this.entries.length / 2)].seq;
    // A merged view always reaches the live end (it has no newer pages to read).
    const dropFront = this.merged || this.hooks.following() || (prefer !== "back" && shownSeq >= mid);
    if (dropFront) {
      const dropped = this.entries.slice(0, over);
      this.entries = this.entries.slice(over);
      if (this.merged) {
        this.history.restartBefore(this.entries, dropped);
        this.headPrev = this.history.more() ? "merged" : null;
      } else this.headPrev = this.firstCursor();
    } else {
      this.entries = this.entries.slice(0, this.entries.length - over);
      this.tailNext = this.lastCursor();
      if (this.tailComplete) {
        this.tailComplete = false;
        this.pending = [];
      }
    }
    this.hooks.changed(true);
  }

  /** Merge `pending` after a catch-up page that reached the end of the file. */
  finishCatchUp(fetched) {
    const seen = new Set(fetched.map((e) => e.cursor));
    const rest = this.pending.filter((e) => !e.cursor || !seen.has(e.cursor));
    this.pending = [];
    this.tailComplete = true;
    this.tailNext = null;
    this.add(rest, "back");
  }

  /** Fetch the page before the first entry. */
  async loadOlder() {
    const before = this.headPrev;
    if (!before) return;
    this.loadingHead = true;
    try {
      if (this.merged) {
        const got = await this.history.older(PAGE);
        this.add(got, "front");
        this.headPrev = this.history.more() ? "merged" : null;
        this.hooks.changed(true);
        return;
      }
      const d = await this.api(this.ids[0], { before, limit: PAGE });
      if (this.headPrev !== before) return; // the window moved meanwhile
      this.add(d.entries.map((e) => this.stamp(e)), "front");
      this.headPrev = d.prev;
      this.hooks.changed(true);
      this.trim("back");
    } catch (e) {
      this.failed("history", e);
    } finally {
      this.loadingHead = false;
      this.hooks.settled();
    }
  }

  /** Fetch the page after the last entry, towards the live end. */
  async loadNewer() {
    const after = this.tailNext || this.lastCursor();
    if (!after || this.merged) return;
    this.loadingTail = true;
    const epoch = this.pendingEpoch;
    try {
      const d = await this.api(this.ids[0], { after, limit: PAGE });
      if ((this.tailNext || this.lastCursor()) !== after || this.tailComplete) return;
      const got = d.entries.map((e) => this.stamp(e));
      this.add(got, "back");
      this.tailNext = d.next || this.lastCursor();
      const budget = !!(d.scanned && d.scanned.budget);
      if (got.length < PAGE && !budget && epoch === this.pendingEpoch) this.finishCatchUp(got);
      this.hooks.changed(true);
      this.trim("front");
    } catch (e) {
      this.failed("catch-up", e);
    } finally {
      this.loadingTail = false;
      this.hooks.settled();
    }
  }

  failed(what, e) {
    if (e instanceof ClosedError) return;
    this.failedAt = performance.now();
    this.hooks.warn(`${what}: ${e.message}`);
  }

  /**
   * Replace the entries with the stream's last `count` lines and merge what arrived live
   * meanwhile, so the window reaches the live end again. Resolves true once it does (at once
   * if it already did), false when the window was closed or the fetch failed.
   */
  async reloadEnd(count) {
    while (!this.tailComplete) {
      const epoch = this.pendingEpoch;
      let d;
      try {
        d = await this.api(this.ids[0], { last: count });
      } catch (e) {
        if (!(e instanceof ClosedError)) this.hooks.warn(`jump to end: ${e.message}`);
        return false;
      }
      if (this.tailComplete) return false;
      if (epoch !== this.pendingEpoch) continue; // pending overflowed meanwhile: read again
      this.entries = [];
      this.headPrev = d.prev;
      const got = d.entries.map((e) => this.stamp(e));
      this.add(got, "back");
      this.finishCatchUp(got);
      this.hooks.changed(false);
      return true;
    }
    return true;
  }

  /**
   * Page back to the stream's first line, keeping at most RETAIN entries (the newest are
   * dropped). Resolves true when the window holds the first line.
   */
  async pageToStart() {
    if (this.headPrev === null) return true;
    this.loadingHead = true;
    try {
      if (this.merged) {
        while (this.history.more() && this.entries.length < RETAIN) {
          this.add(await this.history.older(START_PAGE), "front");
          this.headPrev = this.history.more() ? "merged" : null;
        }
        return true; // at the start, or as far back as a merged view holds
      }
      const chunks = [];
      let count = 0;
      let prev = this.headPrev;
      while (prev) {
        const d = await this.api(this.ids[0], { before: prev, limit: START_PAGE });
        chunks.unshift(d.entries.map((e) => this.stamp(e)));
        count += d.entries.length;
        while (count - chunks[chunks.length - 1].length >= RETAIN) count -= chunks.pop().length;
        if (!d.entries.length && d.prev === prev) break; // nothing moved: do not spin
        prev = d.prev;
      }
      this.add(chunks.flat(), "front");
      this.headPrev = prev || null;
      this.trim("back");
      return true;
    } catch (e) {
      if (!(e instanceof ClosedError)) this.hooks.warn(`start of file: ${e.message}`);
      return false;
    } finally {
      this.loadingHead = false;
    }
  }

  /** The cursor of the first entry with this text (a test hook). */
  cursorOf(text) {
    const e = this.entries.find((x) => x.text === text);
    return e ? e.cursor : null;
  }
}
