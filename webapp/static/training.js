// Live progress of queued and running fine-tunes, polled every two seconds: the bar, the time
// elapsed and left, and the run's loss and validation curves, redrawn when an epoch finishes.
(function () {
  const box = document.getElementById("active");
  function line(text, className) {
    const p = document.createElement("p");
    if (className) p.className = className;
    p.textContent = text;
    return p;
  }
  function curves(run, holder) {
    if (!run.epochs_reported) return;
    const figure = document.createElement("div"); figure.className = "live-curves";
    Object.entries(run.curves).forEach(([chart, url]) => {
      const img = document.createElement("img");
      img.src = `${url}?epochs=${run.epochs_reported}`;
      img.alt = `Run #${run.id}: ${chart} by epoch`;
      figure.appendChild(img);
    });
    holder.appendChild(figure);
  }
  function render(runs) {
    // rebuilt (curves reloaded) only when a run comes, goes or finishes an epoch; the text every poll
    const shape = runs.map(run => `${run.id}:${run.status}:${run.epochs_reported}`).join(",");
    const redraw = box.dataset.shape !== shape;
    box.dataset.shape = shape;
    if (redraw) box.innerHTML = "";
    if (!runs.length) { if (redraw) box.appendChild(line("No run is queued or running.", "muted")); return; }
    runs.forEach(run => {
      let part = document.getElementById(`run-${run.id}`);
      if (!part) { part = document.createElement("div"); part.id = `run-${run.id}`; part.className = "live-run"; box.appendChild(part); }
      let text = part.querySelector(".live-text");
      if (!text) { text = document.createElement("div"); text.className = "live-text"; part.appendChild(text); }
      text.innerHTML = "";
      const p = run.progress || {};
      const title = line(`Run #${run.id} (${run.trigger}): ${run.status}` + (p.stage ? `, ${p.stage}` : ""));
      const link = document.createElement("a"); link.href = run.page; link.textContent = "its page";
      title.append(" · ", link);
      text.appendChild(title);
      if (run.timing && run.timing.text) text.appendChild(line(run.timing.text, "eta"));
      if (p.epoch) {
        const done = ((p.epoch - 1) + (p.steps ? p.step / p.steps : 0)) / (p.max_epochs || 1);
        const bar = document.createElement("div"); bar.className = "progress";
        const fill = document.createElement("span"); fill.style.width = Math.min(100, done * 100).toFixed(0) + "%";
        bar.appendChild(fill); text.appendChild(bar);
        const auc = p.val_auc !== undefined && p.val_auc !== null ? `, validation AUC ${p.val_auc}` : "";
        text.appendChild(line(`epoch ${p.epoch}/${p.max_epochs}, step ${p.step}/${p.steps}, loss ${p.loss}` + auc, "muted"));
      }
      if (redraw) curves(run, part);
    });
  }
  async function poll() {
    try { const r = await fetch(window.location.pathname.replace(/\/$/, "") + "/status"); if (r.ok) render((await r.json()).active); } catch (e) { /* next poll */ }
  }
  poll(); setInterval(poll, 2000);
})();
