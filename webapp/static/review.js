// Confirm or correct from the keyboard (Enter confirms, 1..n picks a class), time spent on the
// image, and a guard against double submits. The viewer's own keys live in viewer.js.
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
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key === "Enter") { event.preventDefault(); press(document.getElementById("confirm")); }
    const choice = form.querySelector(`button[data-key="${event.key}"]`);
    if (choice) { event.preventDefault(); press(choice); }
  });
})();
