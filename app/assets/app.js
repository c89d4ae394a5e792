// Small enhancements only: every page works without this file.
"use strict";

// A form whose button asks first (voiding, cancelling, deactivating) says so before it goes.
document.addEventListener("submit", (event) => {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// The read-models page refreshes itself while a rebuild runs (without script, a <noscript>
// refresh reloads it); here the figures move without reloading the page.
const LIVE = "[data-live-progress]";
const refresh = async () => {
  try {
    const answer = await fetch(window.location.href, { headers: { Accept: "text/html" } });
    if (!answer.ok) return;
    const html = await answer.text();
    const next = new DOMParser().parseFromString(html, "text/html").querySelector(LIVE);
    const current = document.querySelector(LIVE);
    if (next && current) {
      current.replaceWith(next);
      if (next.getAttribute("data-live-progress") === "running") setTimeout(refresh, 1000);
    }
  } catch (_) { /* the next reload shows the figures anyway */ }
};
const live = document.querySelector(LIVE);
if (live && live.getAttribute("data-live-progress") === "running") setTimeout(refresh, 1000);
