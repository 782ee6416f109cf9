// filterbar.js: the filter bar: its text field, the regex and case toggles, the error line
// under the header, and the running Filter (filter.js) they make.
//
// It owns the filter's life: a new one on every change (after a short typing pause), the old
// one disposed, a regex that had to be stopped switched off with its reason shown. It does not
// know about rows or the URL: the page hears of every change through hooks.

import { Filter, checkSpec } from "./filter.js";

const TYPING_PAUSE_MS = 120;

export class FilterBar {
  /**
   * @param {object} els {q, re, cs, err}: the field, the two toggles, the error line
   * @param {object} hooks
   * @param {() => object[]} hooks.entries the entries to decide at once (the open view's)
   * @param {() => void} hooks.changed the filter changed (or went off): rows are shown anew
   * @param {() => void} hooks.decided a regex worker decided more entries
   */
  constructor(els, hooks) {
    this.els = els;
    this.hooks = hooks;
    this.filter = null; // the running Filter, or null when off
    this.gen = 0;
    let timer = 0;
    els.q.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.apply(), TYPING_PAUSE_MS);
    });
    for (const b of [els.re, els.cs]) {
      b.addEventListener("click", () => {
        b.setAttribute("aria-pressed", b.getAttribute("aria-pressed") === "true" ? "false" : "true");
        this.apply();
      });
    }
  }

  /** The spec the controls show: `{q, re, cs}`. */
  spec() {
    const on = (b) => b.getAttribute("aria-pressed") === "true";
    return { q: this.els.q.value, re: on(this.els.re), cs: on(this.els.cs) };
  }

  /** Set the controls (from the URL) without applying them. */
  show(spec) {
    this.els.q.value = spec.q || "";
    this.els.re.setAttribute("aria-pressed", String(!!spec.re));
    this.els.cs.setAttribute("aria-pressed", String(!!spec.cs));
  }

  /** Start the filter the controls describe (or none). */
  apply() {
    const spec = this.spec();
    if (this.filter) this.filter.dispose();
    this.filter = null;
    const chk = checkSpec(spec);
    this.error(chk.error || "");
    if (spec.q && !chk.error) {
      const f = new Filter(spec, ++this.gen, () => this.hooks.decided(), (why) => {
        if (this.filter !== f) return;
        this.error(`${why}; filter off`);
        this.filter = null;
        this.hooks.changed();
      });
      this.filter = f;
      f.evaluate(this.hooks.entries());
    }
    this.hooks.changed();
  }

  /** Empty the field (Escape); true when there was something to clear. */
  clear() {
    if (!this.els.q.value) return false;
    this.els.q.value = "";
    this.apply();
    return true;
  }

  focus() {
    this.els.q.focus();
    this.els.q.select();
  }

  error(text) {
    this.els.err.textContent = text;
    this.els.err.hidden = !text;
    this.els.q.classList.toggle("bad", !!text);
  }
}
