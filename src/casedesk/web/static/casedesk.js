// casedesk: the little the pages do in the browser. No framework; every page works without it.
"use strict";

// A case page follows its case: when someone else changes it, the page shows the change —
// at once when nothing is being typed, or after a click when it would lose what is typed.
(function followTheCase() {
  const article = document.querySelector("[data-live]");
  if (!article || !window.EventSource) return;
  const banner = document.getElementById("live-banner");
  const typing = () =>
    Array.from(document.querySelectorAll("textarea, input[type=text]")).some((field) => field.value.trim() !== "");
  const source = new EventSource(article.dataset.live);
  source.addEventListener("changed", () => {
    source.close();
    if (!typing()) {
      window.location.reload();
      return;
    }
    banner.hidden = false;
  });
  banner.querySelector("[data-reload]").addEventListener("click", () => window.location.reload());
})();
