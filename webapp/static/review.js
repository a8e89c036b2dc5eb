// Confirm or correct from the keyboard (Enter confirms, 1..n picks a class, U unsure, S skip, C the
// comment box, Esc leaves a text box), time spent on the image, and a guard against double submits.
// The viewer's own keys live in viewer.js.
(function () {
  const shown = performance.now();
  const form = document.getElementById("label-form");
  if (!form) return;
  let sent = false;
  form.addEventListener("submit", (event) => {
    if (sent) { event.preventDefault(); return; }
    sent = true;
    document.getElementById("time_spent_ms").value = Math.round(performance.now() - shown);
  });
  function press(button) { if (button && !sent) { button.click(); } }
  const typing = window.medalTyping;   // keys.js
  const keys = {
    u: () => press(document.getElementById("unsure")),
    s: () => press(document.getElementById("skip")),
    c: () => document.getElementById("comment")?.focus(),
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // Esc hands the keys back to the shortcuts after typing a finding or a comment
    if (event.key === "Escape" && typing(event.target) && form.contains(event.target)) { event.target.blur(); return; }
    if (typing(event.target)) return;
    if (event.key === "Enter") { event.preventDefault(); press(document.getElementById("confirm")); }
    const act = event.key.length === 1 ? keys[event.key.toLowerCase()] : undefined;
    if (act) { event.preventDefault(); act(); return; }
    const choice = form.querySelector(`button[data-key="${event.key}"]`);
    if (choice) { event.preventDefault(); press(choice); }
  });
})();
