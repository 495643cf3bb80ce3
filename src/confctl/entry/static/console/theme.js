// The console's forced theme, applied before the page is first painted: a classic script in <head> runs while the
// page is parsed, before anything shows (app.js, a module, runs only once the page is parsed: applied there, a
// forced theme would flash the system's first). A file, not an inline script, so the page's policy needs no
// 'unsafe-inline'. app.js does the rest: the #theme button, and the choice's changes.
"use strict";
try {
  const choice = localStorage.getItem("confctl.console.theme"); // app.js's THEME_KEY
  if (choice === "dark" || choice === "light") document.documentElement.dataset.theme = choice;
} catch {
  // localStorage refused (storage blocked for the site): the page follows the system.
}
