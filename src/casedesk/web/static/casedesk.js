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

// The case list from the keyboard: j / k (or the arrow keys) move through the cases, Enter
// opens the one chosen, / goes to the filters.
(function walkTheList() {
  const rows = Array.from(document.querySelectorAll("table.cases[data-keys] tbody tr"));
  if (!rows.length) return;
  let at = -1;
  const choose = (index) => {
    if (at >= 0) rows[at].removeAttribute("aria-current");
    at = Math.max(0, Math.min(rows.length - 1, index));
    rows[at].setAttribute("aria-current", "true");
    rows[at].querySelector("a").focus();
  };
  document.addEventListener("keydown", (event) => {
    const field = event.target.closest("input, textarea, select");
    if (field || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "j" || event.key === "ArrowDown") choose(at + 1);
    else if (event.key === "k" || event.key === "ArrowUp") choose(at - 1);
    else if (event.key === "Enter" && at >= 0) rows[at].querySelector("a").click();
    else if (event.key === "/") document.querySelector(".filters input, .filters select")?.focus();
    else return;
    event.preventDefault();
  });
})();

// Case list, bulk changes: "select all on this page", and x toggles the focused row's box.
(() => {
  const all = document.querySelector("[data-select-all]");
  const boxes = Array.from(document.querySelectorAll("table.cases input[data-select]"));
  if (!all) return;
  all.addEventListener("change", () => { for (const box of boxes) box.checked = all.checked; });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "x" || event.target.closest?.("input, textarea, select")) return;
    const row = document.activeElement?.closest?.("table.cases tbody tr")
      || document.querySelector("table.cases tbody tr[aria-current]");
    const box = row?.querySelector("input[data-select]");
    if (box) { box.checked = !box.checked; event.preventDefault(); }
  });
})();

// The views' counts stay current while a page is open: refreshed every 30 seconds, and when
// the tab comes back into view.
(function keepTheCountsCurrent() {
  const nav = document.querySelector("nav[data-counts]");
  if (!nav || !window.fetch) return;
  const refresh = () => {
    if (document.hidden) return;
    fetch(nav.dataset.counts, { credentials: "same-origin" })
      .then((answer) => (answer.ok ? answer.json() : null))
      .then((counts) => {
        if (!counts) return;
        for (const [view, shown] of Object.entries(counts)) {
          const count = nav.querySelector(`[data-view="${view}"]`);
          if (count) count.textContent = shown;
        }
      })
      .catch(() => {});
  };
  setInterval(refresh, 30000);
  document.addEventListener("visibilitychange", refresh);
})();

// --- action traces (admin: /app/admin/traces) --------------------------------------------
// The list's Live switch: follows the server's tail of new calls (Server-Sent Events) and
// puts each matching call on top of the list, as the server rendered its row.
(function followTheCalls() {
  const toggle = document.querySelector("[data-trace-live]");
  const rows = document.querySelector("[data-trace-rows]");
  if (!toggle || !rows || !window.EventSource) return;
  const status = document.querySelector("[data-trace-live-status]");
  let source = null;
  const say = (key) => { if (status) status.textContent = status.dataset[key] || ""; };
  const stop = (key) => {
    if (source) source.close();
    source = null;
    toggle.setAttribute("aria-pressed", "false");
    say(key);
  };
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    if (source) { stop("stopped"); return; }
    source = new EventSource(toggle.dataset.traceLive);
    toggle.setAttribute("aria-pressed", "true");
    say("following");
    source.addEventListener("trace", (event) => {
      const made = document.createElement("template");
      made.innerHTML = event.data.trim();
      const row = made.content.firstElementChild;
      if (!row) return;
      row.classList.add("new");
      rows.prepend(row);
      document.querySelector("[data-trace-empty]")?.remove();
    });
    source.addEventListener("gone", () => stop("lost"));
    source.onerror = () => { if (source && source.readyState === EventSource.CLOSED) stop("lost"); };
  });
})();
// --- end of action traces ------------------------------------------------------------------

// --- admin screens: a secret or a one-time link shown once gets a copy button -------------
(function copyWhatIsShownOnce() {
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    const field = document.getElementById(button.dataset.copy);
    if (!field || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(field.value);
      button.textContent = button.dataset.copied;
    });
  });
})();
// --- end of the admin screens' copy button ------------------------------------------------

// --- admin: rules (admin_rule.html) ---
// A time rule's calendar is shown only while "count business hours only" is ticked; without
// this script it is always shown, and read only when ticked.
(() => {
  const box = document.querySelector("[data-rule-builder] input[name=use_calendar]");
  const calendar = box?.form.querySelector("fieldset.calendar");
  if (!box || !calendar) return;
  const follow = () => { calendar.hidden = !box.checked; };
  box.addEventListener("change", follow);
  follow();
})();
// --- end admin: rules ---
