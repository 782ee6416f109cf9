// filter.js: the line filter (plain text or regex, case toggle) and match ranges for
// highlighting. Also the Web Worker that runs user regexes (this same file, loaded with
// `new Worker("filter.js", {type: "module"})`).
//
// Containing catastrophic regexes. JavaScript's RegExp backtracks, so a pattern such as
// `(a+)+$` can take exponential time on one line, and a page that runs it on the main thread
// freezes for good. User regexes therefore NEVER run on the main thread:
//   1. the pattern is capped at MAX_PATTERN chars and must compile;
//   2. lines are tested in a dedicated Web Worker, in batches; the page keeps a watchdog, and
//      when a batch is not answered within BUDGET_MS the worker is terminated (the only way to
//      stop a running RegExp) and the filter is reported as "too slow" and switched off,
//      instead of the page hanging;
//   3. the worker tests at most MAX_TEST_CHARS of each line, so one 1 MiB line cannot eat the
//      whole budget with an otherwise harmless pattern.
// Plain-text filtering (the default) uses indexOf and is linear, so it runs inline.

import { plainText } from "./ansi.js";

export const MAX_PATTERN = 500;
export const BUDGET_MS = 1500;
const MAX_TEST_CHARS = 65536;
const MAX_RANGES = 500;
const BATCH_LINES = 2000;

function regexRanges(re, text) {
  const out = [];
  re.lastIndex = 0;
  const s = text.length > MAX_TEST_CHARS ? text.slice(0, MAX_TEST_CHARS) : text;
  let m;
  let matched = false;
  while ((m = re.exec(s)) && out.length < MAX_RANGES) {
    matched = true;
    if (m[0].length === 0) {
      // A pattern that matches the empty string (`^`, `x*`) still matches the line.
      re.lastIndex++;
      if (re.lastIndex > s.length) break;
      continue;
    }
    out.push([m.index, m.index + m[0].length]);
  }
  return matched ? out : null;
}

/** Ranges of `needle` in `hay` (both already case-folded as wanted), or null. */
function plainRanges(hay, needle) {
  let i = hay.indexOf(needle);
  if (i < 0) return null;
  const out = [];
  while (i >= 0 && out.length < MAX_RANGES) {
    out.push([i, i + needle.length]);
    i = hay.indexOf(needle, i + needle.length);
  }
  return out;
}

/**
 * Validate a filter spec `{q, re, cs}`. Returns `{error}` or `{ok: true}`.
 */
export function checkSpec(spec) {
  if (!spec.q || !spec.re) return { ok: true };
  if (spec.q.length > MAX_PATTERN) return { error: `regex longer than ${MAX_PATTERN} characters` };
  try {
    new RegExp(spec.q, spec.cs ? "gu" : "giu");
  } catch (e) {
    return { error: `invalid regex: ${e.message}` };
  }
  return { ok: true };
}

/**
 * A running filter. `evaluate(entries)` sets `e.fm` (match ranges, or null for no match) and
 * `e.fg = this.gen` on each entry, synchronously for plain text and asynchronously (worker)
 * for regexes; `onUpdate()` is called after asynchronous results land; `onFail(reason)`
 * when the regex had to be stopped.
 */
export class Filter {
  constructor(spec, gen, onUpdate, onFail) {
    this.spec = spec;
    this.gen = gen;
    this.onUpdate = onUpdate;
    this.onFail = onFail;
    this.active = !!spec.q;
    this.isRegex = this.active && !!spec.re;
    if (this.active && !this.isRegex) {
      this.needle = spec.cs ? spec.q : spec.q.toLowerCase();
    }
    if (this.isRegex) this.startWorker();
  }

  startWorker() {
    this.worker = new Worker("filter.js", { type: "module" });
    this.queue = []; // [{id, entries, sentAt}]
    this.nextId = 1;
    this.worker.onmessage = (ev) => this.onResult(ev.data);
    this.worker.onerror = () => this.fail("the regex worker failed");
    this.worker.postMessage({ type: "init", pattern: this.spec.q, flags: this.spec.cs ? "gu" : "giu" });
    this.watchdog = setInterval(() => {
      const head = this.queue[0];
      if (head && performance.now() - head.sentAt > BUDGET_MS) {
        this.fail(`regex too slow (over ${BUDGET_MS} ms for ${head.entries.length} lines): catastrophic backtracking?`);
      }
    }, 250);
  }

  fail(reason) {
    if (this.failed) return;
    this.failed = true;
    this.dispose();
    this.onFail(reason);
  }

  dispose() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    clearInterval(this.watchdog);
    this.queue = [];
  }

  /** Is entry `e` decided, and shown? Notices (markers) always show. */
  shows(e) {
    if (!this.active || e.notice) return true;
    return e.fg === this.gen && e.fm !== null;
  }

  evaluate(entries) {
    if (!this.active || this.failed) return;
    if (!this.isRegex) {
      for (const e of entries) {
        if (e.notice) continue;
        const text = plainText(e);
        e.fm = plainRanges(this.spec.cs ? text : text.toLowerCase(), this.needle);
        e.fg = this.gen;
      }
      return;
    }
    for (let i = 0; i < entries.length; i += BATCH_LINES) {
      const chunk = entries.slice(i, i + BATCH_LINES).filter((e) => !e.notice);
      if (!chunk.length) continue;
      const id = this.nextId++;
      // The watchdog clock of a batch starts when the previous one is answered (see onResult).
      this.queue.push({ id, entries: chunk, sentAt: this.queue.length ? Infinity : performance.now() });
      this.worker.postMessage({ type: "test", id, texts: chunk.map(plainText) });
    }
  }

  onResult(msg) {
    if (this.failed) return;
    const head = this.queue.shift();
    if (!head || head.id !== msg.id) return;
    if (msg.error) {
      this.fail(msg.error);
      return;
    }
    head.entries.forEach((e, i) => {
      e.fm = msg.results[i];
      e.fg = this.gen;
    });
    if (this.queue.length) this.queue[0].sentAt = performance.now();
    this.onUpdate();
  }
}

// ---- worker side ----
if (typeof WorkerGlobalScope !== "undefined" && globalThis instanceof WorkerGlobalScope) {
  let re = null;
  globalThis.onmessage = (ev) => {
    const m = ev.data;
    if (m.type === "init") {
      try {
        re = new RegExp(m.pattern, m.flags);
      } catch (e) {
        re = null;
      }
    } else if (m.type === "test") {
      if (!re) {
        globalThis.postMessage({ id: m.id, error: "invalid regex" });
        return;
      }
      const results = m.texts.map((t) => regexRanges(re, t));
      globalThis.postMessage({ id: m.id, results });
    }
  };
}
