// rows.js: one log row's element, and what the pointer does on rows: the arrival time as a
// tooltip, the copy button, a click that links to a line, a click on a time that links to
// the time, the toggle that expands a row, and a click on a field that adds it to the query.
//
// It owns how an entry looks (stream label in a merged view, the time column, the level's
// colour, ANSI styles, filter highlights, a structured line's message and fields, a record's
// first line, markers for notices) and never where rows go: the scroller (view.js) asks
// `build(entry)` for the rows it draws, `display(entry)` for the text of a row's first line
// and `extraLines(entry)` for what an expanded row adds. Log text only ever enters the DOM
// through text nodes.

import { parsed, plainText } from "./ansi.js";
import { buildText } from "./view.js";
import { detail, fieldTerm, lineOf, show, structure } from "./fields.js";

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

/** ` [+N lines]` for a text of several lines. */
function moreLines(text) {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return ` [+${n} line${n === 1 ? "" : "s"}]`;
}

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
   * @param {() => object|null} hooks.clock the time column's Clock (time.js), null when hidden
   * @param {() => boolean} hooks.short whether the time column shows the time of day only
   * @param {(e: object) => void} hooks.toggle open or close the row of `e`
   * @param {(term: string) => void} hooks.addTerm add a term to the query
   * @param {(ms: number, row: HTMLElement) => void} hooks.timeLink the user clicked a time
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

  /** Width of the time column, in characters (0 when hidden). */
  timeCols() {
    if (!this.hooks.clock()) return 0;
    return this.hooks.short() ? 13 : 24;
  }

  /** Width of everything before the text, in characters. */
  prefixCols() {
    return this.labelCols() + this.timeCols();
  }

  /**
   * What the row of `e` shows on its first line when that is not its text: a structured
   * line's message and fields, a record's first line; null otherwise.
   */
  display(e) {
    if (e.notice !== undefined) return null;
    if (e.dl !== undefined) return `▸ ${e.dl}`;
    const s = structure(e);
    if (s) return `▸ ${lineOf(e, s)}`;
    // plainText, not parsed: this runs for every entry when wrapped heights are laid out, and
    // must not keep a parsed copy of each.
    const p = plainText(e);
    const nl = p.indexOf("\n");
    if (nl < 0) return null;
    return `▸ ${p.slice(0, nl)}${moreLines(p)}`;
  }

  /** Lines an open row adds below its first. */
  extraLines(e) {
    const s = structure(e);
    if (s) return detail(s).length;
    return plainText(e).split("\n").length - 1;
  }

  timeCell(row, e) {
    const clock = this.hooks.clock();
    if (!clock) return;
    const c = document.createElement("span");
    c.className = "tc";
    c.style.width = `${this.timeCols()}ch`;
    const ms = e.ts !== undefined ? e.ts : e.time;
    if (ms !== undefined && e.notice === undefined) {
      c.textContent = clock.cell(ms, this.hooks.short());
      c.ms = ms;
      if (e.ts === undefined) {
        c.classList.add("arr");
        c.title = "arrival time (the line has no time of its own) · click: link to this time";
      } else c.title = `${clock.cell(ms)} ${clock.name()} · click: link to this time`;
    }
    row.appendChild(c);
  }

  /** A line across the row where the day changes from the row before, with the new day. */
  dayMark(row, e, prev) {
    const clock = this.hooks.clock();
    if (!clock || !prev) return;
    const at = (x) => (x.ts !== undefined ? x.ts : x.time);
    const a = at(prev);
    const b = at(e);
    if (a === undefined || b === undefined) return;
    const day = clock.day(b);
    if (clock.day(a) === day) return;
    row.classList.add("newday");
    row.dataset.day = day;
  }

  toggleButton(t, e) {
    const b = document.createElement("span");
    b.className = "xp";
    b.setAttribute("role", "button");
    b.setAttribute("aria-expanded", String(!!e.open));
    b.title = e.open ? "collapse" : "expand";
    b.textContent = e.open ? "▾ " : "▸ ";
    t.appendChild(b);
  }

  build(e, prev) {
    const row = document.createElement("div");
    row.className = e.level ? `row lvl-${e.level}` : "row";
    row.entry = e;
    this.dayMark(row, e, prev);
    if (this.hooks.labels() && e.stream) {
      const l = document.createElement("span");
      l.className = `lbl c${streamColour(e.stream)}`;
      l.textContent = e.stream;
      l.style.width = `${this.labelCols()}ch`;
      row.appendChild(l);
    }
    this.timeCell(row, e);
    const t = document.createElement("span");
    t.className = "txt";
    const p = parsed(e);
    let more = null; // the lines an open row shows below its first
    if (e.notice !== undefined) {
      row.classList.add("marker", `m-${e.notice}`);
      t.textContent = p.plain;
    } else {
      const s = structure(e);
      const nl = s ? -1 : p.plain.indexOf("\n");
      if (s) {
        this.toggleButton(t, e);
        this.fields(t, s);
        if (e.open) more = detail(s);
      } else {
        const f = this.hooks.filter();
        const ranges = f && f.active && e.fg === f.gen ? e.fm : null;
        if (nl >= 0) {
          this.toggleButton(t, e);
          buildText(t, p.plain, p.segs, ranges, nl);
          const m = document.createElement("span");
          m.className = "more";
          m.textContent = moreLines(p.plain);
          t.appendChild(m);
          if (e.open) more = p.plain.slice(nl + 1).split("\n");
        } else buildText(t, p.plain, p.segs, ranges);
      }
      if (e.truncated) {
        const s = document.createElement("span");
        s.className = "more";
        s.textContent = " [line cut at the server's --max-line-bytes]";
        t.appendChild(s);
      }
    }
    row.appendChild(t);
    if (more) {
      row.classList.add("open");
      const d = document.createElement("div");
      d.className = "detail";
      d.style.marginLeft = `${this.prefixCols()}ch`; // under the text, past the label and time
      d.textContent = more.join("\n");
      row.appendChild(d);
    }
    const linked = this.hooks.linked();
    if (e.cursor && linked && e.cursor === linked) row.classList.add("linked");
    return row;
  }

  /** A structured line: its message, then one chip per field (a click adds it to the query). */
  fields(t, s) {
    if (s.msg) {
      const m = document.createElement("span");
      m.className = "msg";
      m.textContent = s.msg.replace(/\n/g, " ⏎ ");
      t.appendChild(m);
    }
    s.fields.forEach(([k, v], i) => {
      if (i > 0 || s.msg) t.appendChild(document.createTextNode(" "));
      const c = document.createElement("span");
      c.className = "fk";
      c.dataset.i = String(i);
      const key = document.createElement("span");
      key.className = "k";
      key.textContent = `${k}=`;
      c.appendChild(key);
      c.appendChild(document.createTextNode(show(v).replace(/\n/g, " ⏎ ")));
      if (fieldTerm(k, v, false)) c.title = "click: only lines with this value · Alt-click: lines without it";
      t.appendChild(c);
    });
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

  // Click a line: link to it. The copy button copies the whole line; the toggle opens the row;
  // a field adds itself to the query; a time links to that time.
  onClick(ev) {
    const row = ev.target.closest(".row");
    if (!row || !row.entry) return;
    const e = row.entry;
    if (ev.target.closest(".cp")) {
      this.copy(parsed(e).plain);
      return;
    }
    if (ev.target.closest(".xp")) {
      this.hooks.toggle(e);
      return;
    }
    const chip = ev.target.closest(".fk");
    if (chip) {
      const s = structure(e);
      const f = s && s.fields[Number(chip.dataset.i)];
      const term = f && fieldTerm(f[0], f[1], ev.altKey);
      if (term) this.hooks.addTerm(term);
      else this.hooks.say("this field cannot be queried by name");
      return;
    }
    const tc = ev.target.closest(".tc");
    if (tc && tc.ms !== undefined) {
      this.markLinked(row);
      this.hooks.timeLink(tc.ms, row);
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
