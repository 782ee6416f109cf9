// timebar.js: the time controls: the time column on or off, its zone (the browser's or UTC),
// both remembered, and the go-to-time input (read in the zone shown).
//
// It owns these choices and the Clock (time.js) that formats in the zone; it does not know
// about rows or the view: the page hears `changed()` (draw the rows again) and `goTo(ms)`.

import { recall, remember } from "./prefs.js";
import { Clock } from "./time.js";

export class TimeBar {
  /**
   * @param {object} els {tcol, tz, goto, go}: the column toggle, the zone toggle, the
   *   datetime input and its button
   * @param {object} hooks
   * @param {() => void} hooks.changed the column or its zone changed: draw the rows again
   * @param {(ms: number) => void} hooks.goTo the user asked for a time
   * @param {() => number|null} hooks.firstTime the time of the first line on screen
   * @param {(msg: string) => void} hooks.say tell the user
   */
  constructor(els, hooks) {
    this.els = els;
    this.hooks = hooks;
    this.shown = recall("cometail.time") !== "0";
    this.clock = new Clock(recall("cometail.tz"));
    els.tcol.addEventListener("click", () => {
      this.shown = !this.shown;
      remember("cometail.time", this.shown ? "1" : "0");
      this.changed();
    });
    els.tz.addEventListener("click", () => {
      this.setZone(this.clock.utc ? "local" : "utc");
      remember("cometail.tz", this.clock.zone);
    });
    const go = () => {
      const ms = this.clock.fromInput(els.goto.value);
      if (ms === null) hooks.say("pick a date and time to go to");
      else hooks.goTo(ms);
    };
    els.go.addEventListener("click", go);
    els.goto.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") go();
    });
    // An empty input starts from the time of the first line on screen.
    els.goto.addEventListener("focus", () => {
      if (els.goto.value) return;
      const ms = hooks.firstTime();
      if (ms !== null) els.goto.value = this.clock.inputValue(ms);
    });
    this.show();
  }

  /** The Clock the time column formats with, or null while the column is hidden. */
  column() {
    return this.shown ? this.clock : null;
  }

  /** Show times in `zone` ("utc" or "local"); the input keeps the instant it holds. */
  setZone(zone) {
    const was = this.clock.fromInput(this.els.goto.value);
    this.clock = new Clock(zone);
    if (was !== null) this.els.goto.value = this.clock.inputValue(was);
    this.changed();
  }

  changed() {
    this.show();
    this.hooks.changed();
  }

  show() {
    this.els.tcol.setAttribute("aria-pressed", String(this.shown));
    this.els.tz.textContent = this.clock.utc ? "UTC" : "local";
    this.els.tz.title = `times in ${this.clock.name()} (click to switch)`;
  }
}
