// view.js: the virtual scroller and row rendering for the log area.
//
// Only the rows in (and just around) the viewport exist in the DOM; a spacer element gives the
// scroll area its full height. Without wrapping every row has the same height (one line), so
// positions are `index * rowH`. With wrapping, a row's height is computed, not measured: the
// log font is monospace and rows wrap at any character (`overflow-wrap: anywhere`), so a
// row's line count is `ceil(cells / columns)`; rows get that height explicitly and the prefix
// sums of heights locate rows in O(log n). An expanded row (a structured line's fields, a
// record's further lines) adds whole lines below its own, so while one is open the prefix sums
// are used without wrapping too.
//
// Rows are kept in document order, so a selection across several rows copies them in order.
// Log text only ever enters the DOM through textContent / text nodes.

import { plainText, styleSpan } from "./ansi.js";

const OVERSCAN = 8;
/** How long after a wheel turn, touch or scrolling key a scroll counts as the user's. */
const INTENT_MS = 1000;
const SCROLL_KEYS = new Set(["ArrowUp", "ArrowDown", "PageUp", "PageDown", " ", "Home", "End"]);
/** Longest line text put in the DOM; the copy action still copies the whole line. */
const MAX_RENDER_CHARS = 10000;

// East Asian wide and fullwidth ranges, counted as two cells when estimating wrapped heights.
const WIDE_RE = /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/g;

function cells(s) {
  let n = s.length;
  if (n > MAX_RENDER_CHARS) n = MAX_RENDER_CHARS + 40;
  let tabs = 0;
  for (let i = s.indexOf("\t"); i >= 0 && i < MAX_RENDER_CHARS; i = s.indexOf("\t", i + 1)) tabs++;
  n += tabs * 7;
  const wide = s.length < 4096 ? s.match(WIDE_RE) : null;
  if (wide) n += wide.length;
  return n;
}

const NOT_TEXT = new Set(["checkbox", "radio", "button", "submit", "reset", "range", "color", "file", "image"]);

/** Does typing in `el` enter text (so that letters are not shortcuts)? */
export function isTextField(el) {
  if (el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) return true;
  if (el instanceof HTMLInputElement) return !NOT_TEXT.has(el.type);
  return !!(el && el.isContentEditable);
}

/**
 * Append `plain` (with ANSI `segs` and highlight `ranges`) to `parent` as DOM nodes; only its
 * first `stop` characters when given (a record's first line).
 */
export function buildText(parent, plain, segs, ranges, stop) {
  const limit = Math.min(plain.length, MAX_RENDER_CHARS, stop === undefined ? Infinity : stop);
  const pieces = segs || [{ t: plain, st: null }];
  let pos = 0;
  let ri = 0;
  for (const seg of pieces) {
    if (pos >= limit) break;
    const end = Math.min(pos + seg.t.length, limit);
    let target = parent;
    if (seg.st) {
      target = document.createElement("span");
      styleSpan(target, seg.st);
      parent.appendChild(target);
    }
    let p = pos;
    while (p < end) {
      while (ranges && ri < ranges.length && ranges[ri][1] <= p) ri++;
      const r = ranges && ri < ranges.length ? ranges[ri] : null;
      if (r && r[0] <= p) {
        const stop = Math.min(end, r[1]);
        const mark = document.createElement("mark");
        mark.textContent = plain.slice(p, stop);
        target.appendChild(mark);
        p = stop;
      } else {
        const stop = r ? Math.min(end, r[0]) : end;
        target.appendChild(document.createTextNode(plain.slice(p, stop)));
        p = stop;
      }
    }
    pos += seg.t.length;
  }
  if (plain.length > limit && limit === MAX_RENDER_CHARS) {
    const more = document.createElement("span");
    more.className = "more";
    more.textContent = ` … ${plain.length - limit} more characters (copy the line to get them)`;
    parent.appendChild(more);
  }
}

export class LogView {
  /**
   * @param {HTMLElement} scroller the scrolling element
   * @param {HTMLElement} spacer its only in-flow child, sized to the full height
   * @param {object} hooks {build(entry, previous entry) -> row element, onScroll(user), resized(),
   *   prefixCols(), display(entry), extraLines(entry)}; `onScroll(user)` says whether the user
   *   moved the view (see userScrolled); `prefixCols` is the width of the columns before the
   *   text (stream label, time), `display` the text a row shows on its first line (for
   *   wrapped heights), `extraLines` the lines an expanded row adds below it
   */
  constructor(scroller, spacer, hooks) {
    this.el = scroller;
    this.spacer = spacer;
    this.hooks = hooks;
    this.rows = [];
    // How many of `rows` are laid out. The page may hand over an array it goes on appending
    // to; rows past `n` wait for the next setRows, so the geometry never runs ahead of the DOM.
    this.n = 0;
    this.wrap = false;
    this.tops = null; // prefix sums (wrap mode, or rows open), length rows.length + 1
    this.opened = new Set(); // expanded entries
    this.live = new Map(); // entry -> element currently in the DOM
    this.ranges = null;
    this.gen = 0; // bump to force re-rendering of every row (filter, theme of labels...)
    this.measure();
    this.lastSet = 0; // the scrollTop we last set ourselves
    // Cached geometry: reading scrollTop / clientHeight after DOM changes forces a layout,
    // which at thousands of lines per second costs more than everything else together.
    this.pos = 0; // scrollTop, updated by scroll events and by our own scrolls
    this.viewH = this.el.clientHeight;
    this.intentUntil = 0; // performance.now() until which a scroll counts as the user's
    this.pointerDown = false; // a pointer pressed in the log (scrollbar drag, selection)
    this.el.addEventListener("scroll", () => {
      this.pos = this.el.scrollTop;
      this.render();
      this.hooks.onScroll(this.userScrolled());
    }, { passive: true });
    this.watchIntent();
    new ResizeObserver(() => this.resized()).observe(this.el);
    // A font that loads late changes the character cell the heights are computed from.
    if (document.fonts) document.fonts.addEventListener("loadingdone", () => this.resized(true));
  }

  /**
   * Record the user's own ways of scrolling: the wheel, touch, a pointer pressed in the log
   * (its scrollbar, a selection dragged past an edge) and the scrolling keys. A scroll event
   * counts as the user's only within INTENT_MS of one of these; every other scroll (the
   * browser clamping scrollTop after a resize, our own scrolls) is not the user's choice.
   */
  watchIntent() {
    const intent = () => {
      this.intentUntil = performance.now() + INTENT_MS;
    };
    const opts = { passive: true };
    this.el.addEventListener("wheel", (ev) => {
      intent();
      // Down at the very end nothing scrolls, so no scroll event comes: say so here.
      if (ev.deltaY > 0) requestAnimationFrame(() => this.hooks.onScroll(true));
    }, opts);
    this.el.addEventListener("touchstart", intent, opts);
    this.el.addEventListener("touchmove", intent, opts);
    this.el.addEventListener("pointerdown", () => {
      this.pointerDown = true;
      intent();
    }, opts);
    const up = () => {
      this.pointerDown = false;
    };
    addEventListener("pointerup", up, true);
    addEventListener("pointercancel", up, true);
    document.addEventListener("keydown", (ev) => {
      if (SCROLL_KEYS.has(ev.key) && !isTextField(ev.target)) intent();
    }, true);
  }

  /** Did the user move the view just now (see watchIntent)? */
  userScrolled() {
    return this.pointerDown || performance.now() < this.intentUntil;
  }

  /**
   * Did a scroll no input event announced leave the end (a scrollbar dragged where the browser
   * reports no pointer, find in page, assistive technology)? Nothing else moves the log off
   * its end: the browser's own adjustments only clamp scrollTop to the real bottom (scroll
   * anchoring is off), and the page's scrolls set `lastSet`. Reads the layout: call it from
   * a scroll event only.
   */
  strayed() {
    if (Math.abs(this.pos - this.lastSet) <= 2) return false;
    // A box whose size the page has not taken in yet (the resize observer runs after this
    // event) is in flux: the browser moved scrollTop, not the user. The end is pinned again.
    if (this.el.clientHeight !== this.viewH || this.el.clientWidth !== this.width) return false;
    return this.el.scrollTop + this.el.clientHeight < this.el.scrollHeight - 2;
  }

  /** The scroller's box (or the font) changed: recompute what depends on it. */
  resized(remeasure) {
    this.viewH = this.el.clientHeight;
    const w = this.el.clientWidth;
    if (w !== this.width || remeasure) {
      // What the user was reading stays in place (the page re-pins the end when following).
      const anchor = this.anchor();
      this.width = w;
      this.measure();
      this.relayout();
      this.restore(anchor);
    }
    this.render();
    this.hooks.resized();
  }

  measure() {
    const probe = document.createElement("div");
    probe.className = "row probe";
    const t = document.createElement("span");
    t.className = "txt";
    t.textContent = "X".repeat(100);
    probe.appendChild(t);
    this.spacer.appendChild(probe);
    const r = t.getBoundingClientRect();
    this.charW = r.width / 100 || 7.8;
    this.rowH = Math.max(1, Math.round(probe.getBoundingClientRect().height)) || 18;
    const cs = getComputedStyle(probe);
    this.padX = (parseFloat(cs.paddingLeft) || 0) + (parseFloat(cs.paddingRight) || 0);
    this.lineH = this.rowH;
    probe.remove();
    this.width = this.el.clientWidth;
  }

  columns() {
    // Two spare pixels: sub-pixel character widths must not wrap a line one column early.
    const pad = this.padX + 2 + this.hooks.prefixCols() * this.charW;
    return Math.max(10, Math.floor((this.el.clientWidth - pad) / this.charW));
  }

  /** Are row heights other than one line each (wrapping, or a row open)? */
  variable() {
    return this.wrap || this.opened.size > 0;
  }

  rowHeight(e) {
    if (!this.variable()) return this.rowH;
    const extra = e.open ? this.hooks.extraLines(e) : 0;
    if (!this.wrap) return this.rowH + extra * this.lineH;
    const cols = this.cols;
    if (e.hc !== cols || e.hx !== extra) {
      e.hc = cols;
      e.hx = extra;
      const text = this.hooks.display(e);
      e.h = (Math.max(1, Math.ceil(cells(text === null ? plainText(e) : text) / cols)) + extra) * this.lineH;
    }
    return e.h;
  }

  /** Open or close entry `e`'s expansion (its row is built again). */
  setOpen(e, on) {
    if (!!e.open === on) return;
    const anchor = this.anchor();
    e.open = on;
    if (on) this.opened.add(e);
    else this.opened.delete(e);
    const el = this.live.get(e);
    if (el) el.gen = -1;
    this.relayout();
    this.restore(anchor);
    this.render();
  }

  relayout() {
    if (!this.variable()) {
      this.tops = null;
    } else {
      this.cols = this.columns();
      const n = this.n;
      const tops = new Float64Array(n + 1);
      let y = 0;
      for (let i = 0; i < n; i++) {
        tops[i] = y;
        y += this.rowHeight(this.rows[i]);
      }
      tops[n] = y;
      this.tops = tops;
    }
    this.spacer.style.height = `${this.total()}px`;
  }

  total() {
    return this.tops ? this.tops[this.n] : this.n * this.rowH;
  }

  top(i) {
    return this.tops ? this.tops[i] : i * this.rowH;
  }

  /** Index of the row at offset y. */
  indexAt(y) {
    const n = this.n;
    if (!n) return 0;
    if (!this.tops) return Math.max(0, Math.min(n - 1, Math.floor(y / this.rowH)));
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.tops[mid] <= y) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Replace the shown rows (entries in order, each with a `seq`); keeps the anchor if asked. */
  setRows(rows, keepAnchor) {
    const anchor = keepAnchor ? this.anchor() : null;
    this.rows = rows;
    this.n = rows.length;
    // Forget expansions of entries no longer shown (trimmed, filtered out).
    if (this.opened.size) {
      const shown = new Set(rows);
      for (const e of this.opened) {
        if (!shown.has(e)) {
          e.open = false;
          this.opened.delete(e);
        }
      }
    }
    this.relayout();
    if (anchor) this.restore(anchor);
    this.render();
  }

  setWrap(on) {
    const anchor = this.anchor();
    this.wrap = on;
    this.el.classList.toggle("wrap", on);
    this.clear();
    this.relayout();
    this.restore(anchor);
    this.render();
  }

  /** Drop every row element so that the next render rebuilds them. */
  clear() {
    for (const el of this.live.values()) el.remove();
    this.live.clear();
  }

  anchor() {
    if (!this.n) return null;
    const i = this.indexAt(this.pos);
    return { seq: this.rows[i].seq, off: this.pos - this.top(i) };
  }

  /** Index of the first row with seq >= `seq` (rows are sorted by seq). */
  findSeq(seq) {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.rows[mid].seq < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  restore(a) {
    if (!a) return;
    const i = Math.min(this.findSeq(a.seq), Math.max(0, this.n - 1));
    const off = this.rows[i] && this.rows[i].seq === a.seq ? a.off : 0;
    this.scrollTo(this.top(i) + off);
  }

  scrollTo(y) {
    const max = Math.max(0, this.total() - this.viewH);
    const t = Math.max(0, Math.min(max, y));
    this.lastSet = t;
    if (Math.abs(this.pos - t) >= 1) {
      this.el.scrollTop = t;
      this.pos = t;
    }
  }

  scrollToBottom() {
    this.scrollTo(this.total());
    this.render();
  }

  scrollToIndex(i) {
    this.scrollTo(this.top(i) - this.viewH / 3);
    this.render();
  }

  atBottom() {
    return this.pos + this.viewH >= this.total() - Math.max(4, this.rowH / 2);
  }

  /** First and last row index drawn. */
  range() {
    const n = this.n;
    if (!n) return [0, -1];
    const a = this.indexAt(this.pos);
    const b = this.indexAt(this.pos + this.viewH);
    return [Math.max(0, a - OVERSCAN), Math.min(n - 1, b + OVERSCAN)];
  }

  render() {
    const [a, b] = this.range();
    const want = new Map();
    let changed = false;
    for (let i = a; i <= b; i++) {
      const e = this.rows[i];
      let el = this.live.get(e);
      if (!el || el.gen !== this.gen) {
        if (el) el.remove();
        el = this.hooks.build(e, i > 0 ? this.rows[i - 1] : null);
        el.gen = this.gen;
        changed = true;
      }
      const y = this.top(i);
      if (el.y !== y) {
        el.y = y;
        el.style.transform = `translateY(${y}px)`;
      }
      if (this.tops) {
        const h = `${this.rowHeight(e)}px`;
        if (el.style.height !== h) el.style.height = h;
      } else if (el.style.height) el.style.height = "";
      want.set(e, el);
    }
    for (const [e, el] of this.live) {
      if (!want.has(e)) {
        el.remove();
        changed = true;
      }
    }
    this.live = want;
    if (changed) {
      // Keep document order equal to visual order (selection copy), moving as little as we can.
      let prev = null;
      for (const el of want.values()) {
        const expected = prev ? prev.nextSibling : this.spacer.firstChild;
        if (expected !== el) this.spacer.insertBefore(el, expected);
        prev = el;
      }
    }
  }

  /** Build every row again at the next render (the filter or the labels changed). */
  invalidate() {
    this.gen++;
  }

  hasRows() {
    return this.n > 0;
  }

  /** Index of entry `e` among the rows, or -1. */
  indexOf(e) {
    const i = this.rows.indexOf(e);
    return i < this.n ? i : -1;
  }

  /** The first row drawn (on screen or just above it), or null. */
  firstDrawn() {
    const [a] = this.range();
    return this.rows[a] || null;
  }

  /** Has the view moved up from where we last put it (more than rounding)? */
  movedUp() {
    return this.pos < this.lastSet - 2;
  }

  /**
   * Read the real scroll position. The cached one can lag a scroll event behind, and a wheel
   * at scrollTop 0 fires no scroll event at all; reading it costs a layout, so only callers
   * that are not streaming lines in (paused) do.
   */
  syncPosition() {
    this.pos = this.el.scrollTop;
  }

  /** Is the top of the view within `screens` screen heights of the first row? */
  nearTop(screens) {
    return this.pos < this.viewH * screens;
  }

  /** Is the bottom of the view within `screens` screen heights of the last row? */
  nearBottom(screens) {
    return this.total() - (this.pos + this.viewH) < this.viewH * screens;
  }

  /** Do the rows fill at least `screens` screen heights? */
  fills(screens) {
    return this.total() >= this.viewH * screens;
  }

  /** Are the first `n` rows (of at least one) on screen? */
  showsFirstRows(n) {
    return this.n > 0 && this.pos < this.rowH * n;
  }

  /** The element showing `e`, if it is in the DOM. */
  elementFor(e) {
    return this.live.get(e) || null;
  }
}
