// relay.js: the browser's one live connection, as a SharedWorker that every tab of the page
// joins (`new SharedWorker("relay.js", {type: "module"})`, from live.js).
//
// Over HTTP/1.1 a browser opens at most six connections per host, so a connection per tab
// leaves the seventh tab without new lines. Here one `Conn` (conn.js: SSE, long polling as
// its fallback, resume from its own cursors) follows the union of the streams every tab
// needs, its view and the streams it counts unread lines of, and each tab's subscriptions get
// the entries of their streams. When the union changes the connection is reopened from the
// cursors it holds, so nothing is lost or repeated. One multiplexed SSE request carries at
// most GROUP streams (the server's limit), so a larger union takes one connection per GROUP. The worker lives while any tab holds it:
// closing the tab that started it changes nothing for the others.
//
// A subscription names a cursor per stream: the last entry its tab has. When that is not the
// connection's own position, the subscription catches up: the worker reads `/lines?after=`
// pages from the tab's cursor and holds the live entries meanwhile, until an entry is in both
// (the join), then sends the held entries after the join and follows live. Each entry reaches
// each subscription once, in order.
//
// A subscription may carry a query (`q`, filtered on the server): subscriptions with the same
// query share connections, and a different query gets connections of its own.

import { Conn, Status } from "./conn.js";

const PAGE = 1000; // catch-up page size
const GROUP = 64; // streams per connection: the server's MAX_MULTIPLEXED
const HELD_MAX = 50000; // live entries held per catching-up stream; past that, read them again
const REOPEN_DELAY_MS = 50; // batch the subscriptions of a page load into one reopen
const PORT_SILENCE_MS = 5 * 60 * 1000; // a tab not heard from for this long is gone
const RETRY_MS = 1000;

const ports = new Set(); // {port, subs: Map<id, Sub>, heard}
let conns = []; // each follows up to GROUP streams of the union, in sorted order
const statuses = new Map(); // Conn -> {s, detail}
let status = { s: Status.CONNECTING, detail: undefined };
let reopenTimer = 0;
let paused = false; // a test hook paused the connection

/** One tab's subscription to some streams. */
class Sub {
  constructor(owner, id, streams, cursors, q) {
    this.owner = owner;
    this.id = id;
    this.streams = streams;
    this.q = q || "";
    // Per catching-up stream: `a` the tab's cursor, `held` the live entries since the
    // connection's position `from`, `fetching` while a page is being read.
    this.catching = new Map();
    this.fresh = new Map(); // streams the connection does not follow yet -> this tab's cursor
    this.closed = false;
    for (const s of streams) {
      const c = cursors[s] || null;
      const conn = connOf(s, this.q);
      if (!conn) {
        this.fresh.set(s, c);
        continue;
      }
      // `null` (nothing yet) starts at the connection's position, like `last=0` does.
      const own = conn.cursors.get(s) || null;
      if (c && c !== own) this.catchUp(s, c, own);
    }
  }

  /** Start catching up `stream` from the tab's cursor `a`; the connection stands at `from`. */
  catchUp(stream, a, from) {
    const st = { a, from, held: [], fetching: false };
    this.catching.set(stream, st);
    this.join(stream, st);
  }

  send(stream, entries) {
    if (!this.closed && entries.length) {
      this.owner.port.postMessage({ t: "entries", sub: this.id, stream, entries });
    }
  }

  /** Live entries of `stream` from the shared connection. */
  live(stream, entries) {
    const st = this.catching.get(stream);
    if (!st) {
      this.send(stream, entries);
      return;
    }
    for (const e of entries) st.held.push(e);
    if (st.held.length > HELD_MAX) {
      // Forget them: the catch-up pages read them from the file instead.
      st.held = [];
      st.from = null;
    }
    this.join(stream, st);
  }

  /** Try to join the tab's cursor to the live entries; read pages when it cannot yet. */
  async join(stream, st) {
    if (st.fetching || this.closed) return;
    if (this.joinHeld(stream, st)) return;
    st.fetching = true;
    try {
      for (;;) {
        const before = st.held.length; // held before the page was asked for
        const from = st.from; // the connection's start as known when the page was asked for
        let d;
        try {
          d = await lines(stream, st.a, this.q);
        } catch (e) {
          if (e.status >= 400 && e.status < 500 && e.status !== 429) {
            // The server will not read from this cursor (the stream is gone, or it refuses
            // the cursor): go on with the live entries rather than ask again forever.
            console.info(`cometail: catching up ${stream} failed (${e.message}); live from here`);
            this.send(stream, st.held);
            this.catching.delete(stream);
            return;
          }
          await new Promise((res) => setTimeout(res, RETRY_MS));
          if (this.closed) return;
          continue;
        }
        if (this.closed) return;
        const got = d.entries || [];
        for (let k = 0; k < got.length; k++) {
          const c = got[k].cursor;
          const j = st.held.findIndex((e) => e.cursor === c);
          if (c === st.from || j >= 0) {
            // The join: what the page has before it, then the held entries from it on.
            this.send(stream, got.slice(0, c === st.from ? k + 1 : k));
            this.send(stream, j >= 0 ? st.held.slice(j) : st.held);
            this.catching.delete(stream);
            return;
          }
        }
        this.send(stream, got);
        if (got.length) st.a = got[got.length - 1].cursor;
        if (this.joinHeld(stream, st)) return;
        if (got.length === PAGE) continue;
        // A short page: the tab has everything the file had when it was read.
        if (!st.held.length) {
          // The join comes with the next live entries, unless the connection's start became
          // known meanwhile (`onStart`): it may lie after this page, so read again.
          if (st.from !== from) continue;
          return;
        }
        if (got.length || !before) continue; // held entries may follow the cursor: read again
        // Nothing after the tab's cursor, though entries were held before the page was asked
        // for: the tab already has those (it is ahead of the connection). Let them go.
        st.from = st.held[before - 1].cursor;
        st.held = st.held.slice(before);
        if (this.joinHeld(stream, st) || !st.held.length) return;
      }
    } finally {
      st.fetching = false;
    }
  }

  /** Join when the tab's cursor is the connection's start or among the held entries. */
  joinHeld(stream, st) {
    if (st.a === st.from) {
      this.send(stream, st.held);
    } else {
      const i = st.held.findIndex((e) => e.cursor === st.a);
      if (i < 0) return false;
      this.send(stream, st.held.slice(i + 1));
    }
    this.catching.delete(stream);
    return true;
  }
}

async function lines(stream, after, query) {
  const q = new URLSearchParams({ after, limit: String(PAGE) });
  if (query) q.set("q", query);
  const r = await fetch(`api/streams/${encodeURIComponent(stream)}/lines?${q}`, { cache: "no-store" });
  if (!r.ok) throw Object.assign(new Error(`HTTP ${r.status}`), { status: r.status });
  return r.json();
}

function allSubs() {
  const out = [];
  for (const p of ports) for (const s of p.subs.values()) out.push(s);
  return out;
}

/** The streams some subscription needs, per query, in a stable order. */
function wanted() {
  const byQ = new Map();
  for (const sub of allSubs()) {
    if (!byQ.has(sub.q)) byQ.set(sub.q, new Set());
    for (const s of sub.streams) byQ.get(sub.q).add(s);
  }
  return [...byQ.keys()].sort().map((q) => ({ q, streams: [...byQ.get(q)].sort() }));
}

/** Reopen the connection when the union of streams changed (soon, in one go). */
function reconcile(now) {
  clearTimeout(reopenTimer);
  if (!now) {
    reopenTimer = setTimeout(() => reconcile(true), REOPEN_DELAY_MS);
    return;
  }
  const groups = [];
  for (const { q, streams } of wanted()) {
    for (let i = 0; i < streams.length; i += GROUP) groups.push({ q, streams: streams.slice(i, i + GROUP) });
  }
  const key = (list) => list.map((g) => `${g.q}\n${g.streams.join("\n")}`).join("\n\n");
  if (key(groups) === key(conns)) return;
  const cursors = new Map(); // `q` NUL stream -> cursor
  for (const { q, streams } of groups) {
    for (const s of streams) {
      const conn = connOf(s, q);
      cursors.set(`${q}\0${s}`, conn ? conn.cursors.get(s) || null : startCursor(s, q));
    }
  }
  for (const c of conns) c.close();
  statuses.clear();
  conns = groups.map(({ q, streams }) => {
    const c = new Conn({
      streams,
      q,
      cursors: new Map(streams.map((s) => [s, cursors.get(`${q}\0${s}`)])),
      onEntries: (s, es) => onEntries(q, s, es),
      onStart: (s, cursor) => onStart(q, s, cursor),
      onStatus: (st, detail) => onStatus(c, st, detail),
    });
    return c;
  });
  for (const c of conns) {
    c.start();
    if (paused) c.disconnect("disconnected on request");
  }
}

/** The connection following `stream` under query `q`, if any. */
function connOf(stream, q) {
  return conns.find((c) => c.q === q && c.streams.includes(stream));
}

/**
 * Where the connection starts a stream it did not follow: at the cursor of the first
 * subscription that asked for it with one (that one is then in step; others catch up), or
 * from now.
 */
function startCursor(stream, q) {
  const asking = allSubs().filter((sub) => sub.q === q && sub.fresh && sub.fresh.has(stream));
  let c = null;
  for (const sub of asking) c = c || sub.fresh.get(stream);
  for (const sub of asking) {
    const mine = sub.fresh.get(stream);
    sub.fresh.delete(stream);
    if (mine && mine !== c) sub.catchUp(stream, mine, c);
  }
  return c;
}

/**
 * A connection that began `stream` from now has been told where now is: subscriptions that
 * catch up to that unknown start join there (their page reads so far may have ended before
 * it, and what came between is in no live entry).
 */
function onStart(q, stream, cursor) {
  for (const sub of allSubs()) {
    const st = sub.q === q ? sub.catching.get(stream) : undefined;
    if (st && st.from === null && !st.held.length) {
      st.from = cursor;
      sub.join(stream, st);
    }
  }
}

function onEntries(q, stream, entries) {
  for (const sub of allSubs()) if (sub.q === q && sub.streams.includes(stream)) sub.live(stream, entries);
}

/** Every tab shows one status: live when every connection is, else the first that is not. */
function onStatus(conn, s, detail) {
  statuses.set(conn, { s, detail });
  const all = conns.map((c) => statuses.get(c) || { s: Status.CONNECTING });
  const down = all.find((x) => x.s !== Status.SSE && x.s !== Status.POLL);
  const next = down || all.find((x) => x.s === Status.POLL) || all[0];
  if (!next || (next.s === status.s && next.detail === status.detail)) return;
  status = { s: next.s, detail: next.detail };
  for (const p of ports) p.port.postMessage({ t: "status", s: status.s, detail: status.detail });
}

function onMessage(owner, m) {
  owner.heard = performance.now();
  if (m.t === "subscribe") {
    const sub = new Sub(owner, m.id, m.streams, m.cursors || {}, m.q);
    owner.subs.set(m.id, sub);
    owner.port.postMessage({ t: "status", s: status.s, detail: status.detail });
    reconcile(false);
  } else if (m.t === "unsubscribe") {
    const sub = owner.subs.get(m.id);
    if (sub) sub.closed = true;
    owner.subs.delete(m.id);
    reconcile(false);
  } else if (m.t === "bye") {
    drop(owner);
  } else if (m.t === "disconnect") {
    paused = true;
    for (const c of conns) c.disconnect(m.why);
  } else if (m.t === "resume") {
    paused = false;
    for (const c of conns) c.resume();
  }
}

function drop(owner) {
  for (const sub of owner.subs.values()) sub.closed = true;
  ports.delete(owner);
  reconcile(false);
}

// Tabs that vanished without a word (a crash) are let go after a long silence; live tabs say
// "alive" now and then (see live.js).
setInterval(() => {
  const now = performance.now();
  for (const p of ports) if (now - p.heard > PORT_SILENCE_MS) drop(p);
}, 60000);

globalThis.onconnect = (ev) => {
  const port = ev.ports[0];
  const owner = { port, subs: new Map(), heard: performance.now() };
  ports.add(owner);
  port.onmessage = (m) => onMessage(owner, m.data);
  port.start();
};
