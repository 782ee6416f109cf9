// screen.js: what the log box shows of the open view, and whether it follows the live end.
//
// Changes to the view's entries are batched: `schedule` asks for one `flush` per animation
// frame, which hands the scroller the rows the filter shows and then either pins the end
// (following) or draws where the reader is and reads further pages near the edges.
//
// Following is the user's choice: only the user scrolling (view.js tells which scrolls are the
// user's) or a key changes it. Any other scroll (the browser clamping scrollTop after a
// resize, a wrap toggle, rows changing height) leaves it as it is, and the end is pinned
// again. Following stops only when the view moved *up* from where we last put it: scroll
// events arrive a frame late, when more lines may already have grown the log, so "not at
// the bottom" alone would pause a fast stream by itself. A scroll off the end that no input
// announced pauses too (view.strayed); coming back to the end follows again only on input.

export class Screen {
  /**
   * @param {import("./view.js").LogView} view the scroller
   * @param {{newlines: HTMLElement, top: HTMLElement}} els the new-lines control and the
   *   note at the top of the log
   * @param {object} hooks `win()` the open EntryWindow (or null), `filter()` the line filter
   *   (or null), `counted()` the unread counts changed, `leaveTime()` the view no longer
   *   stands at a time (following again), `say(msg)` a toast
   */
  constructor(view, els, hooks) {
    this.view = view;
    this.els = els;
    this.hooks = hooks;
    this.following = true;
    this.newCount = 0; // live lines that arrived while not following
    this.dirty = false;
    this.rowsDirty = false;
    this.keepAnchor = false;
    this.jumped = null; // the entry a view was opened around, until the user scrolls
  }

  /** A new view opens: it follows, with nothing unread. */
  reset() {
    this.following = true;
    this.newCount = 0;
    this.jumped = null;
  }

  /** `n` live lines arrived for the open view. */
  arrived(n) {
    if (!this.following) this.newCount += n;
  }

  /** Flush on the next frame; `rowsChanged` re-filters the rows, `anchor` keeps the top row. */
  schedule(rowsChanged, anchor) {
    if (rowsChanged) this.rowsDirty = true;
    if (anchor) this.keepAnchor = true;
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.dirty = false;
    const win = this.hooks.win();
    if (!win) return;
    if (this.rowsDirty) {
      this.rowsDirty = false;
      const f = this.hooks.filter();
      const shown = f && f.active ? win.entries.filter((e) => f.shows(e)) : win.entries;
      const anchor = this.keepAnchor && !this.following;
      this.keepAnchor = false;
      // A view opened around a match keeps the match in view through a filter change (the
      // filter cleared while the jump loaded), until the user scrolls it away.
      const jumped = anchor && this.jumped && shown.includes(this.jumped) ? this.jumped : null;
      this.view.setRows(shown, anchor && !jumped);
      if (jumped) this.view.scrollToIndex(this.view.indexOf(jumped));
    }
    if (this.following) {
      this.view.scrollToBottom();
      // A query's page may hold less than a screen, even nothing (the scan stopped at its
      // budget): read further back, as scrolling up would, until the screen is full.
      if (win.q && !this.view.fills(2) && win.canLoadOlder()) win.loadOlder();
    } else {
      this.view.render();
      this.maybeLoadMore();
    }
    this.showTopNote();
    this.updateNewLines();
  }

  /** The new-lines control, shown while paused with lines below. */
  updateNewLines() {
    const win = this.hooks.win();
    const show = !this.following && (this.newCount > 0 || !win.reachesEnd());
    const b = this.els.newlines;
    b.hidden = !show;
    if (show) {
      b.textContent =
        this.newCount > 0
          ? `↓ ${this.newCount.toLocaleString()} new line${this.newCount === 1 ? "" : "s"}`
          : "↓ jump to end";
    }
    this.hooks.counted();
  }

  /** The scroller moved (`user`: by the user's input). */
  onScroll(user) {
    const win = this.hooks.win();
    if (!win) return;
    if (user) this.jumped = null;
    const view = this.view;
    if (this.following) {
      if ((user && view.movedUp()) || (!user && view.strayed())) {
        this.following = false;
        this.updateNewLines();
      } else if (!user) this.schedule();
    } else if (user && view.atBottom() && win.reachesEnd()) {
      this.following = true;
      this.newCount = 0;
      this.updateNewLines();
    }
    this.showTopNote();
    this.maybeLoadMore();
  }

  /** The log's box changed size: the end stays in view while following. */
  onResized() {
    if (this.following) this.view.scrollToBottom();
  }

  maybeLoadMore() {
    const win = this.hooks.win();
    if (!win) return;
    const view = this.view;
    if (!view.hasRows()) {
      if (win.q && win.canLoadOlder()) win.loadOlder(); // no match yet: search on back
      return;
    }
    // Paused, so reading the real position is affordable.
    view.syncPosition();
    if (view.nearTop(2) && win.canLoadOlder()) win.loadOlder();
    if (view.nearBottom(2) && win.canLoadNewer()) win.loadNewer();
  }

  /** The note floating at the top of the log while the view is near its top. */
  showTopNote() {
    const win = this.hooks.win();
    if (!win) return;
    const text = win.topNote();
    const top = this.els.top;
    if (top.textContent !== text) top.textContent = text;
    // An empty view shows its note only for a query ("no matches", "searching…").
    top.hidden = !text || (this.view.hasRows() ? !this.view.showsFirstRows(3) : !win.q);
  }

  /** Follow the live end again (End, G, the new-lines control); `initial` lines reload it. */
  follow(initial) {
    this.newCount = 0;
    const win = this.hooks.win();
    if (!win) return;
    this.hooks.leaveTime();
    if (!win.reachesEnd()) {
      // Reload the end of the file, then merge what arrived live meanwhile.
      win.reloadEnd(initial).then((ok) => {
        if (!ok || win !== this.hooks.win()) return;
        this.following = true;
        this.schedule(true);
      });
      return;
    }
    this.following = true;
    this.view.scrollToBottom();
    this.updateNewLines();
  }

  /** Page back to the first line of the file (dropping what does not fit), then show it. */
  async toStart() {
    const win = this.hooks.win();
    if (!win) return;
    this.following = false;
    if (!win.merged && !win.atStart()) this.hooks.say("paging back to the start of the file…");
    if (!(await win.pageToStart()) || win !== this.hooks.win()) return;
    this.schedule(true);
    this.flush();
    this.view.scrollTo(0);
    this.onScroll(false);
  }
}
