// prefs.js: the display choices a user makes once and keeps: the theme and line wrapping,
// remembered in localStorage where the browser allows it (it may not: then they last as long
// as the page).

/** Store a choice (quietly nothing where storage is off). */
export function remember(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* storage may be disabled */
  }
}

/** A stored choice, or null. */
export function recall(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function setTheme(button, t) {
  document.documentElement.dataset.theme = t;
  button.setAttribute("aria-label", `theme: ${t} (switch)`);
  button.title = `theme: ${t} (click to switch)`;
}

/** The theme button; without a stored choice the theme follows prefers-color-scheme (CSS). */
export function themeButton(button) {
  const t = recall("cometail.theme");
  if (t === "dark" || t === "light") setTheme(button, t);
  else button.title = "theme: as the system (click to switch)";
  button.addEventListener("click", () => {
    const now =
      document.documentElement.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    const next = now === "dark" ? "light" : "dark";
    setTheme(button, next);
    remember("cometail.theme", next);
  });
}

/**
 * The wrap button: `apply(on)` wraps long lines or not. Without a stored choice wrapping is on
 * for narrow (phone) screens, off otherwise.
 */
export function wrapButton(button, apply) {
  const set = (on) => {
    button.setAttribute("aria-pressed", String(on));
    apply(on);
  };
  const w = recall("cometail.wrap");
  if (w !== null ? w === "1" : matchMedia("(max-width: 720px)").matches) set(true);
  button.addEventListener("click", () => {
    const on = button.getAttribute("aria-pressed") !== "true";
    set(on);
    remember("cometail.wrap", on ? "1" : "0");
  });
}
