// query.js: the query box, which speaks the server's `q` language (docs/API.md, "Querying
// with q"), and the level chooser, which edits the query's `level>=…` term. The query text is
// the one source of truth: chips and field clicks rewrite it, and the page reopens the view
// with it (the server filters, so matches come from the whole history, not only what is
// loaded). A query the server refuses is shown with the part it names marked.
//
// It owns the text and its terms; it does not fetch: the page hears `changed(q)` and reports
// a refusal back with `refused(error)`.

export const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];

const TYPING_PAUSE_MS = 300;

/** The terms of `q` with their positions: whitespace outside quotes separates them. */
export function terms(q) {
  const out = [];
  let i = 0;
  while (i < q.length) {
    while (i < q.length && /\s/.test(q[i])) i++;
    if (i >= q.length) break;
    const start = i;
    let quoted = false;
    while (i < q.length && (quoted || !/\s/.test(q[i]))) {
      if (q[i] === "\\" && quoted) i++;
      else if (q[i] === '"') quoted = !quoted;
      i++;
    }
    out.push({ t: q.slice(start, i), at: start });
  }
  return out;
}

/** The minimum level `q` asks for (`level>=L`), or null. */
export function minLevel(q) {
  for (const { t } of terms(q)) {
    const m = /^level>=(\w+)$/i.exec(t);
    if (m && LEVELS.includes(m[1].toLowerCase())) return m[1].toLowerCase();
  }
  return null;
}

/** `q` with its `level>=` term replaced by `level>=L` (none for a null `level`). */
export function withMinLevel(q, level) {
  const kept = terms(q).map((x) => x.t).filter((t) => !/^level>=/i.test(t));
  if (level) kept.push(`level>=${level}`);
  return kept.join(" ");
}

/** `q` with `term` added at the end (once). */
export function withTerm(q, term) {
  const ts = terms(q).map((x) => x.t);
  if (ts.includes(term)) return q;
  return ts.concat([term]).join(" ");
}

export class QueryBar {
  /**
   * @param {object} els {input, levels (the chips' container), err (the error line)}
   * @param {object} hooks
   * @param {(q: string) => void} hooks.changed the query changed (typing paused, Enter, a chip)
   */
  constructor(els, hooks) {
    this.els = els;
    this.hooks = hooks;
    this.applied = "";
    let timer = 0;
    els.input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.apply(), TYPING_PAUSE_MS);
    });
    els.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        clearTimeout(timer);
        this.apply();
      } else if (ev.key === "Escape" && els.input.value) {
        ev.stopPropagation();
        clearTimeout(timer);
        this.set("");
      }
    });
    for (const lvl of [null, ...LEVELS]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `lv lv-${lvl || "all"}`;
      b.dataset.level = lvl || "";
      b.textContent = lvl ? lvl[0].toUpperCase() : "all";
      b.title = lvl ? `${lvl} and above` : "every level";
      b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", () => this.set(withMinLevel(this.value(), lvl)));
      els.levels.appendChild(b);
    }
    this.showLevel();
  }

  value() {
    return this.els.input.value.trim();
  }

  /** Set the text and apply it. */
  set(q) {
    this.els.input.value = q;
    this.apply();
  }

  /** Show `q` (from the URL) as the applied query, without announcing it. */
  show(q) {
    this.els.input.value = q || "";
    this.applied = this.value();
    this.showLevel();
  }

  apply() {
    const q = this.value();
    this.showLevel();
    if (q === this.applied) return;
    this.applied = q;
    this.refused(null);
    this.hooks.changed(q);
  }

  showLevel() {
    const min = minLevel(this.value());
    for (const b of this.els.levels.children) {
      const lvl = b.dataset.level || null;
      const on = min ? LEVELS.indexOf(lvl) >= LEVELS.indexOf(min) : false;
      b.setAttribute("aria-pressed", String(lvl === null ? !min : on));
    }
  }

  /** Show why the server refused the query (`{error, at, len}`), or clear it (null). */
  refused(e) {
    const err = this.els.err;
    err.textContent = "";
    err.hidden = !e;
    this.els.input.classList.toggle("bad", !!e);
    if (!e) return;
    err.appendChild(document.createTextNode(`${e.error}`));
    const q = this.els.input.value;
    if (typeof e.at === "number") {
      // Byte offsets into the UTF-8 query: map them to characters.
      const bytes = new TextEncoder().encode(q);
      const dec = new TextDecoder();
      const a = dec.decode(bytes.slice(0, e.at)).length;
      const b = a + dec.decode(bytes.slice(e.at, e.at + (e.len || 0))).length;
      const shown = document.createElement("code");
      shown.appendChild(document.createTextNode(q.slice(0, a)));
      const m = document.createElement("mark");
      m.textContent = q.slice(a, b) || " ";
      shown.appendChild(m);
      shown.appendChild(document.createTextNode(q.slice(b)));
      err.appendChild(document.createTextNode(": "));
      err.appendChild(shown);
    }
  }

  focus() {
    this.els.input.focus();
    this.els.input.select();
  }
}
