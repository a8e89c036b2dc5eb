// The chat panel: loads the thread, sends questions, shows answers with the facts they used.
(function () {
  const panel = document.getElementById("chat-panel");
  if (!panel) return;
  const url = panel.dataset.url;
  const log = document.getElementById("chat-log");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const plain = document.getElementById("chat-plain");
  const csrf = document.querySelector("meta[name=csrf-token]").content;

  function show(message) {
    const div = document.createElement("div");
    div.className = "msg " + message.role;
    div.textContent = message.text;
    if (message.role === "assistant" && message.facts && message.facts.length) {
      const details = document.createElement("details");
      const summary = document.createElement("summary"); summary.textContent = "facts used";
      details.appendChild(summary);
      const list = document.createElement("ul");
      message.facts.forEach(f => { const li = document.createElement("li"); li.textContent = f; list.appendChild(li); });
      details.appendChild(list); div.appendChild(details);
    }
    log.appendChild(div); log.scrollTop = log.scrollHeight;
  }

  // "Thinking…" while an answer is pending, so a slow first answer never looks like a dead panel
  function thinking() {
    const div = document.createElement("div");
    div.className = "msg thinking"; div.id = "chat-thinking";
    div.setAttribute("role", "status");
    const label = document.createElement("span"); label.textContent = "Thinking";
    const dots = document.createElement("span"); dots.className = "dots";
    for (let i = 0; i < 3; i++) dots.appendChild(document.createElement("span"));
    div.append(label, dots);
    log.appendChild(div); log.scrollTop = log.scrollHeight;
    return div;
  }

  fetch(url).then(r => r.json()).then(data => (data.messages || []).forEach(show));
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message || button.disabled) return;
    input.value = ""; show({ role: "user", text: message });
    const pending = thinking();
    button.disabled = true;
    let response, data;
    try {
      response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
                                    body: JSON.stringify({ message, mode: plain && plain.checked ? "plain" : "standard" }) });
      data = await response.json();
    } catch (error) {
      response = { ok: false }; data = { error: "The assistant could not be reached; try again in a moment." };
    } finally {
      pending.remove(); button.disabled = false;
    }
    show(response.ok ? { role: "assistant", text: data.answer, facts: data.facts } : { role: "assistant", text: data.error });
    if (response.ok && data.understood_by === "keywords") {
      // the sentence encoder is not available: questions are matched by keywords only
      show({ role: "notice", text: "The assistant is running in a reduced mode (keyword matching); rephrase if the answer misses your question." });
    }
  });
  input.addEventListener("keydown", e => e.stopPropagation());  // typing never triggers review shortcuts
})();
