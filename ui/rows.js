// rows.js: one log row's element, and what the pointer does on rows: the arrival time as a
// tooltip, the copy button, and a click that links to a line.
//
// It owns how an entry looks (stream label in a merged view, ANSI styles, filter highlights,
// markers for notices) and never where rows go: the scroller (view.js) asks `build(entry)` for
// the rows it draws. Log text only ever enters the DOM through text nodes.

import { parsed } from "./ansi.js";
import { buildText } from "./view.js";

const fmtTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  fractionalSecondDigits: 3,
  hour12: false,
});

function streamColour(id) {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 8;
}

export class Rows {
  /**
   * @param {HTMLElement} log the scrolling log element the rows live in
   * @param {object} hooks
   * @param {() => string[]|null} hooks.labels the merged view's stream ids (null: one stream)
   * @param {() => object|null} hooks.filter the running filter, for highlights
   * @param {() => string|null} hooks.linked the linked line's cursor
   * @param {(cursor: string, row: HTMLElement) => void} hooks.link the user clicked a line
   * @param {(msg: string) => void} hooks.say tell the user (copy done or failed)
   */
  constructor(log, hooks) {
    this.log = log;
    this.hooks = hooks;
    this.copyButton = document.createElement("button");
    this.copyButton.className = "cp";
    this.copyButton.type = "button";
    this.copyButton.title = "copy line";
    this.copyButton.setAttribute("aria-label", "copy line");
    this.copyButton.textContent = "⧉";
    log.addEventListener("mouseover", (ev) => this.onHover(ev));
    log.addEventListener("click", (ev) => this.onClick(ev));
  }

  /** Width of the stream labels in a merged view, in characters (0 for one stream). */
  labelCols() {
    const ids = this.hooks.labels();
    if (!ids) return 0;
    let w = 4;
    for (const id of ids) w = Math.max(w, Math.min(16, id.length));
    return w + 2;
  }

  build(e) {
    const row = document.createElement("div");
    row.className = "row";
    row.entry = e;
    if (this.hooks.labels() && e.stream) {
      const l = document.createElement("span");
      l.className = `lbl c${streamColour(e.stream)}`;
      l.textContent = e.stream;
      l.style.width = `${this.labelCols()}ch`;
      row.appendChild(l);
    }
    const t = document.createElement("span");
    t.className = "txt";
    const p = parsed(e);
    if (e.notice !== undefined) {
      row.classList.add("marker", `m-${e.notice}`);
      t.textContent = p.plain;
    } else {
      const f = this.hooks.filter();
      const ranges = f && f.active && e.fg === f.gen ? e.fm : null;
      buildText(t, p.plain, p.segs, ranges);
      if (e.truncated) {
        const s = document.createElement("span");
        s.className = "more";
        s.textContent = " [line cut at the server's --max-line-bytes]";
        t.appendChild(s);
      }
    }
    row.appendChild(t);
    const linked = this.hooks.linked();
    if (e.cursor && linked && e.cursor === linked) row.classList.add("linked");
    return row;
  }

  /** Mark `row` as the linked one (and no other). */
  markLinked(row) {
    for (const el of this.log.querySelectorAll(".row.linked")) el.classList.remove("linked");
    row.classList.add("linked");
  }

  // The tooltip (arrival time) is built on first hover, not for every row drawn.
  onHover(ev) {
    const row = ev.target.closest(".row");
    if (!row || !row.entry) return;
    // One copy button for the whole log, moved into the row under the pointer.
    if (this.copyButton.parentNode !== row) row.appendChild(this.copyButton);
    if (row.title) return;
    const e = row.entry;
    const tip = [];
    if (e.time) tip.push(`arrived ${fmtTime.format(new Date(e.time))}`);
    if (e.cursor && !this.hooks.labels()) tip.push("click: link to this line");
    if (tip.length) row.title = tip.join(" · ");
  }

  // Click a line: link to it. The copy button copies the whole line.
  onClick(ev) {
    const row = ev.target.closest(".row");
    if (!row || !row.entry) return;
    const e = row.entry;
    if (ev.target.closest(".cp")) {
      this.copy(parsed(e).plain);
      return;
    }
    const sel = getSelection();
    if (sel && !sel.isCollapsed) return; // the user is selecting text
    if (!e.cursor || this.hooks.labels()) return;
    this.markLinked(row);
    this.hooks.link(e.cursor);
  }

  async copy(s) {
    try {
      await navigator.clipboard.writeText(s);
      this.hooks.say("line copied");
    } catch {
      const ta = document.createElement("textarea");
      ta.value = s;
      ta.className = "offscreen";
      document.body.appendChild(ta);
      ta.select();
      const ok = document.execCommand("copy");
      ta.remove();
      this.hooks.say(ok ? "line copied" : "copy failed");
    }
  }
}
