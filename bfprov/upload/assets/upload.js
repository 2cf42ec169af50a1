// The upload page: "Check" asks bfprov to log in with a pair; the states come back by
// short polling. No framework, no CDN: this file is everything the page runs.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;

function entryOf(account) {
  return document.querySelector(`li.entry[data-account="${CSS.escape(account)}"]`);
}

function show(state) {
  document.getElementById("done").textContent = state.done;
  document.getElementById("total").textContent = state.total;
  for (const e of state.entries) {
    const li = entryOf(e.account);
    if (!li) continue;
    li.dataset.status = e.status;
    li.querySelector(".status").textContent = e.message ? `${e.status}: ${e.message}` : e.status;
    li.querySelector(".check").disabled = e.status === "checking" || e.status === "live";
  }
}

async function refresh() {
  try {
    const reply = await fetch("/api/state", { cache: "no-store", credentials: "same-origin" });
    if (reply.ok) show(await reply.json());
  } catch (err) {
    // bfprov stopped: the page keeps what it last showed.
  }
}

async function check(account) {
  const li = entryOf(account);
  li.dataset.status = "checking";
  li.querySelector(".status").textContent = "checking";
  const reply = await fetch(`/api/check/${encodeURIComponent(account)}`, {
    method: "POST",
    headers: { "X-CSRF-Token": csrf },
    credentials: "same-origin",
  });
  if (!reply.ok && reply.status !== 409) {
    li.dataset.status = "failed";
    li.querySelector(".status").textContent = `failed: the request was refused (${reply.status})`;
  }
  refresh();
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  const li = button.closest("li.entry");
  if (button.classList.contains("check") && li) {
    check(li.dataset.account);
  } else if (button.classList.contains("copy") && navigator.clipboard) {
    navigator.clipboard.writeText(button.dataset.copy);
  }
});

setInterval(refresh, 1000);
