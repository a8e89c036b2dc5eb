// Keyboard shortcuts, time spent, heat-map toggle, and a guard against double submits.
(function () {
  const shown = performance.now();
  const form = document.getElementById("label-form");
  const heat = document.getElementById("heat");
  const toggle = document.getElementById("heat-toggle");
  const opacity = document.getElementById("heat-opacity");
  if (heat && toggle && opacity) {
    const apply = () => { heat.style.display = toggle.checked ? "" : "none"; heat.style.opacity = opacity.value / 100; };
    toggle.addEventListener("change", apply); opacity.addEventListener("input", apply);
    heat.addEventListener("error", () => { heat.style.display = "none"; toggle.disabled = true; });
  }
  if (!form) return;
  let sent = false;
  form.addEventListener("submit", (event) => {
    if (sent) { event.preventDefault(); return; }
    sent = true;
    document.getElementById("time_spent_ms").value = Math.round(performance.now() - shown);
  });
  function press(button) { if (button && !sent) { button.click(); } }
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) return;
    if (event.key === "Enter") { event.preventDefault(); press(document.getElementById("confirm")); }
    const choice = form.querySelector(`button[data-key="${event.key}"]`);
    if (choice) { event.preventDefault(); press(choice); }
  });
})();
