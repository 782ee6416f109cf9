// streams.js: the server's list of streams, polled, and the unread lines of those not in view.
//
// `/api/streams` is read every few seconds: new glob matches appear, states change (a viewed
// stream that loses its file gets a marker row in the view). The streams not in view are
// followed by a background subscription that only counts their new lines for the picker's
// badges; it moves on from its own cursors when the view changes, so no line is counted twice.

import { groupByHost } from "./hosts.js";

const POLL_MS = 3000;

export class StreamList {
  /**
   * @param {import("./picker.js").Picker} picker the side list it renders into
   * @param {object} hooks `api(path)` a JSON GET, `connect(options)` a live connection
   *   (live.js), `viewed()` the ids of the open view (empty when none), `viewedCount()` the
   *   badge of a viewed stream, `changed(stream, was)` a viewed stream's state changed
   */
  constructor(picker, hooks) {
    this.picker = picker;
    this.hooks = hooks;
    this.list = []; // from /api/streams
    this.byId = new Map();
    this.views = []; // a hub's views of its files (`*~app.log`), from /api/streams
    this.unread = new Map();
    this.bg = null; // the counting connection
  }

  /** The picker again, with the current counts. */
  render() {
    const viewed = this.hooks.viewed();
    this.picker.render(this.list, viewed, (id) =>
      viewed.includes(id) ? this.hooks.viewedCount() : this.unread.get(id) || 0,
    );
    groupByHost(this.picker.list, this.list);
  }

  /** `ids` are now in view: their counts start again from nothing. */
  seen(ids) {
    for (const id of ids) this.unread.set(id, 0);
  }

  /** Read the list now and then every few seconds; the list, or null when unreachable. */
  async poll() {
    try {
      const d = await this.hooks.api("api/streams");
      const old = this.byId;
      this.list = d.streams;
      this.views = d.views || [];
      this.byId = new Map(d.streams.map((s) => [s.id, s]));
      const viewed = this.hooks.viewed();
      for (const s of d.streams) {
        const was = old.get(s.id);
        if (viewed.includes(s.id) && was && was.state !== s.state) this.hooks.changed(s, was);
      }
      this.render();
      if (viewed.length) this.count();
      return d.streams;
    } catch {
      return null;
    } finally {
      setTimeout(() => this.poll(), POLL_MS);
    }
  }

  /** Count the new lines of the streams not in view (again, if the view changed). */
  count() {
    const viewed = this.hooks.viewed();
    const others = this.list.map((s) => s.id).filter((id) => !viewed.includes(id));
    const prev = this.bg;
    if (prev && others.join(",") === prev.streams.join(",")) return;
    if (prev) prev.close();
    this.bg = null;
    if (!others.length) return;
    const cursors = new Map(others.map((id) => [id, prev ? prev.cursors.get(id) || null : null]));
    this.bg = this.hooks.connect({
      streams: others,
      cursors,
      onEntries: (s, es) => {
        this.unread.set(s, (this.unread.get(s) || 0) + es.filter((e) => e.text !== undefined).length);
        this.render();
      },
      onStatus: () => {},
    });
    this.bg.start();
  }
}
