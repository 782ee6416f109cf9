// conn.js: the live connection for one view (one stream, or several merged).
//
// It owns exactly one thing: a cursor per stream (the last entry delivered), and it delivers
// every entry after that cursor exactly once, in order, whatever happens to the transport.
// Transport is Server-Sent Events first; when SSE does not deliver (no `open` nor event within
// SSE_OPEN_TIMEOUT_MS, or SSE_MAX_ERRORS errors in a row without an event in between, which
// is what a buffering proxy looks like) it falls back to long polling `/lines?after=C&wait=30`
// for the rest of this connection's life (several streams poll as one, `api/lines?streams=`,
// in event-time order). After any drop it resumes from the cursors it holds,
// never from the browser's own EventSource retry (we close and reopen explicitly, so the start
// point is always ours).

const SSE_OPEN_TIMEOUT_MS = 5000;
const SSE_MAX_ERRORS = 3;
const POLL_WAIT_S = 30;
const POLL_LIMIT = 1000;
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];

/** Status values shown by the page. */
export const Status = {
  CONNECTING: "connecting",
  SSE: "sse",
  POLL: "poll",
  RECONNECTING: "reconnecting",
  OFFLINE: "offline",
};

export class Conn {
  /**
   * @param {object} o
   * @param {string[]} o.streams stream ids
   * @param {Map<string,string|null>} o.cursors start cursor per stream (null: start at `last=0`)
   * @param {(stream:string, entries:object[]) => void} o.onEntries
   * @param {(status:string, detail?:string) => void} o.onStatus
   * @param {(stream:string, cursor:string) => void} [o.onStart] where a stream that began
   *   without a cursor (`last=0`: "from now") starts, once the server has said so
   * @param {boolean} [o.forcePoll]
   * @param {string} [o.q] the server-side query (`q=`): only matching entries come
   */
  constructor(o) {
    this.streams = o.streams.slice();
    this.q = o.q || "";
    this.cursors = new Map(o.cursors);
    this.onEntries = o.onEntries;
    this.onStatus = o.onStatus;
    this.onStart = o.onStart || (() => {});
    this.mode = o.forcePoll ? "poll" : "sse";
    // Several streams are merged by event time on the server, unless it refuses to (hubs
    // before 2026-12-02 carried arrival order only): then they come in arrival order.
    this.timeOrder = true;
    this.probed = false; // whether a failed SSE asked the server about the order
    this.closed = false;
    this.paused = false; // debug hook: a forced disconnect
    this.es = null;
    this.errors = 0;
    this.attempt = 0;
    this.timers = new Set();
    this.polls = new Map(); // stream -> AbortController
    this.status = null;
    this.onOnline = () => this.kick();
    addEventListener("online", this.onOnline);
    addEventListener("offline", this.onOnline);
  }

  start() {
    this.setStatus(Status.CONNECTING);
    this.kick();
  }

  close() {
    this.closed = true;
    removeEventListener("online", this.onOnline);
    removeEventListener("offline", this.onOnline);
    this.teardown();
  }

  /** Debug/test hook: drop the transport and stay down until `resume()`. */
  disconnect(why = "disconnected on request") {
    this.paused = true;
    this.teardown();
    this.setStatus(Status.RECONNECTING, why);
  }

  resume() {
    this.paused = false;
    this.kick();
  }

  teardown() {
    if (this.es) {
      this.es.close();
      this.es = null;
    }
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const ac of this.polls.values()) ac.abort();
    this.polls.clear();
  }

  later(ms, fn) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  setStatus(s, detail) {
    if (this.status === s && this.detail === detail) return;
    this.status = s;
    this.detail = detail;
    this.onStatus(s, detail);
  }

  /** (Re)start the transport from the cursors held. */
  kick() {
    if (this.closed || this.paused) return;
    this.teardown();
    if (!navigator.onLine) {
      this.setStatus(Status.OFFLINE, "the browser is offline");
      return;
    }
    if (this.mode === "sse") this.openSse();
    else if (this.streams.length > 1 && this.timeOrder) this.mergedPollLoop();
    else for (const s of this.streams) this.pollLoop(s);
  }

  retry(why) {
    if (this.closed || this.paused) return;
    this.teardown();
    const ms = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    this.setStatus(
      this.attempt > BACKOFF_MS.length ? Status.OFFLINE : Status.RECONNECTING,
      why,
    );
    this.later(ms, () => this.kick());
  }

  deliver(stream, entries, next) {
    if (this.closed || this.paused || !this.streams.includes(stream)) return;
    const started = this.cursors.get(stream);
    // With `q`, `next` may lie past the last match (the lines after it were examined and did
    // not match): resuming from it does not scan them again.
    if (this.q && next) this.cursors.set(stream, next);
    else if (entries.length) this.cursors.set(stream, entries[entries.length - 1].cursor);
    else if (next) this.cursors.set(stream, next);
    // "From now" is a position only once the server has named it: a reopen before that
    // starts from a later now, so whoever waits on this start must learn where it is.
    if (!started && !entries.length && next) this.onStart(stream, next);
    if (entries.length) this.onEntries(stream, entries);
  }

  sseUrl() {
    const multi = this.streams.length > 1;
    const q = new URLSearchParams();
    if (this.q) q.set("q", this.q);
    if (multi) {
      q.set("streams", this.streams.join(","));
      // Merged by event time on the server; the position stays one cursor per stream.
      if (this.timeOrder) q.set("order", "time");
      const after = [];
      for (const s of this.streams) {
        const c = this.cursors.get(s);
        if (c) after.push(`${s}:${c}`);
      }
      if (after.length) q.set("after", after.join(","));
      if (after.length < this.streams.length) q.set("last", "0");
      return `api/events?${q}`;
    }
    const s = this.streams[0];
    const c = this.cursors.get(s);
    if (c) q.set("after", c);
    else q.set("last", "0");
    return `api/streams/${encodeURIComponent(s)}/events?${q}`;
  }

  openSse() {
    const es = new EventSource(this.sseUrl());
    this.es = es;
    let alive = false;
    const markAlive = () => {
      if (this.es !== es) return;
      alive = true;
      this.errors = 0;
      this.attempt = 0;
      this.setStatus(Status.SSE);
    };
    es.onopen = markAlive;
    es.addEventListener("entries", (ev) => {
      if (this.es !== es) return;
      markAlive();
      let d;
      try {
        d = JSON.parse(ev.data);
      } catch {
        return;
      }
      const stream = d.stream || this.streams[0];
      this.deliver(stream, d.entries || [], d.next);
    });
    es.onerror = () => {
      if (this.es !== es) return;
      if (!alive && this.timeOrder && this.streams.length > 1 && !this.probed) {
        this.probeOrder(es);
        return;
      }
      this.errors++;
      if (!alive && this.errors >= SSE_MAX_ERRORS) {
        this.fallBack("SSE failed repeatedly");
        return;
      }
      // Reopen ourselves so the start point is our cursor (not only the browser's retry).
      this.retry("SSE connection lost");
    };
    this.later(SSE_OPEN_TIMEOUT_MS, () => {
      if (this.es === es && !alive) this.fallBack("SSE did not deliver within 5 s");
    });
  }

  /**
   * SSE over several streams failed before it delivered: ask once whether the server refuses
   * the time order (EventSource cannot see the status); if so, go on in arrival order.
   */
  async probeOrder(es) {
    this.probed = true;
    es.close();
    const url = this.sseUrl();
    let refused = false;
    try {
      const r = await fetch(url, { cache: "no-store" });
      refused = r.status === 400 && /order/.test((await r.json()).error || "");
      if (r.ok && r.body) r.body.cancel();
    } catch {
      refused = false;
    }
    if (this.es !== es) return;
    if (refused) {
      console.info("cometail: the server does not merge streams by time; arrival order");
      this.timeOrder = false;
    } else this.errors++;
    this.retry("SSE connection failed");
  }

  fallBack(why) {
    console.info(`cometail: ${why}; falling back to long polling`);
    this.mode = "poll";
    this.errors = 0;
    this.attempt = 0;
    this.kick();
  }

  /**
   * Several streams long-poll as one (`api/lines?streams=…&after=COMPOSITE&wait=…`), so that
   * their entries come in event-time order as over SSE (`order=time`), held as the server
   * holds them for a stream that is behind. Polling each stream on its own delivered them in
   * the order their polls happened to return.
   */
  async mergedPollLoop() {
    const ac = new AbortController();
    this.polls.set("", ac);
    const current = () => !this.closed && !this.paused && this.polls.get("") === ac;
    let first = true;
    while (current()) {
      let d;
      try {
        // A stream without a cursor yet starts at its live end, as `last=0` does.
        for (const s of this.streams) {
          if (this.cursors.get(s)) continue;
          const e = await this.fetchJson(`api/streams/${encodeURIComponent(s)}/lines?last=0`, ac);
          if (e.next) this.cursors.set(s, e.next);
        }
        const q = new URLSearchParams();
        q.set("streams", this.streams.join(","));
        q.set("after", this.streams.map((s) => `${s}:${this.cursors.get(s)}`).join(","));
        if (!first) q.set("wait", String(POLL_WAIT_S));
        q.set("limit", String(POLL_LIMIT));
        if (this.q) q.set("q", this.q);
        first = false;
        d = await this.fetchJson(`api/lines?${q}`, ac);
      } catch (e) {
        if (ac.signal.aborted) return;
        this.polls.delete("");
        if (e.status === 404 || e.status === 400) this.timeOrder = false; // polled one by one
        this.retry(`long poll failed: ${e.message}`);
        return;
      }
      if (!current()) return;
      this.attempt = 0;
      this.setStatus(Status.POLL);
      // Runs of one stream's entries, in the page's (time) order.
      const es = d.entries || [];
      for (let i = 0; i < es.length; ) {
        let j = i;
        while (j < es.length && es[j].stream === es[i].stream) j++;
        this.deliver(es[i].stream, es.slice(i, j));
        i = j;
      }
      // Each stream's part of `next` (with `q`, past entries examined and not matched).
      for (const part of (d.next || "").split(",")) {
        const k = part.lastIndexOf(":");
        if (k > 0 && this.streams.includes(part.slice(0, k))) this.cursors.set(part.slice(0, k), part.slice(k + 1));
      }
    }
  }

  async fetchJson(url, ac) {
    const r = await fetch(url, { signal: ac.signal, cache: "no-store" });
    if (!r.ok) throw Object.assign(new Error(`HTTP ${r.status}`), { status: r.status });
    return r.json();
  }

  async pollLoop(stream) {
    const ac = new AbortController();
    this.polls.set(stream, ac);
    // The first request does not wait, so that the status turns "live" as soon as the server
    // answers; the following ones are long polls.
    let first = true;
    while (!this.closed && !this.paused && this.polls.get(stream) === ac) {
      const c = this.cursors.get(stream);
      const q = new URLSearchParams();
      if (c) {
        q.set("after", c);
        if (!first) q.set("wait", String(POLL_WAIT_S));
      } else q.set("last", "0");
      first = false;
      q.set("limit", String(POLL_LIMIT));
      if (this.q) q.set("q", this.q);
      let d;
      try {
        const r = await fetch(`api/streams/${encodeURIComponent(stream)}/lines?${q}`, {
          signal: ac.signal,
          cache: "no-store",
        });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        d = await r.json();
      } catch (e) {
        if (ac.signal.aborted) return;
        this.polls.delete(stream);
        this.retry(`long poll failed: ${e.message}`);
        return;
      }
      if (ac.signal.aborted) return;
      this.attempt = 0;
      this.setStatus(Status.POLL);
      this.deliver(stream, d.entries || [], d.next);
      if (!c && !this.cursors.get(stream)) {
        // Nothing to resume from yet (empty or missing file): do not spin.
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
  }
}
