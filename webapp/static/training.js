// Live progress of queued and running fine-tunes, polled every two seconds.
(function () {
  const box = document.getElementById("active");
  function render(runs) {
    box.innerHTML = "";
    if (!runs.length) { const p = document.createElement("p"); p.className = "muted"; p.textContent = "No run is queued or running."; box.appendChild(p); return; }
    runs.forEach(run => {
      const p = run.progress || {};
      const title = document.createElement("p");
      title.textContent = `Run #${run.id} (${run.trigger}): ${run.status}` + (p.stage ? `, ${p.stage}` : "");
      box.appendChild(title);
      if (p.epoch) {
        const done = ((p.epoch - 1) + (p.steps ? p.step / p.steps : 0)) / (p.max_epochs || 1);
        const bar = document.createElement("div"); bar.className = "progress";
        const fill = document.createElement("span"); fill.style.width = Math.min(100, done * 100).toFixed(0) + "%";
        bar.appendChild(fill); box.appendChild(bar);
        const detail = document.createElement("p"); detail.className = "muted";
        detail.textContent = `epoch ${p.epoch}/${p.max_epochs}, step ${p.step}/${p.steps}, loss ${p.loss}` + (p.val_auc !== undefined ? `, validation AUC ${p.val_auc}` : "");
        box.appendChild(detail);
      }
    });
  }
  async function poll() {
    try { const r = await fetch(window.location.pathname.replace(/\/$/, "") + "/status"); if (r.ok) render((await r.json()).active); } catch (e) { /* next poll */ }
  }
  poll(); setInterval(poll, 2000);
})();
