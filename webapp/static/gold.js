// Picking gold images from thumbnails: a running count, select all / clear, shift-click ranges.
(function () {
  const form = document.getElementById("mark-form");
  if (!form) return;
  const boxes = Array.from(form.querySelectorAll(".pick input[type=checkbox]:not(:disabled)"));
  const count = document.getElementById("picked-count");
  const submit = document.getElementById("mark-picked");
  function update() {
    const n = boxes.filter((box) => box.checked).length;
    count.textContent = `${n} selected`;
    submit.disabled = n === 0;
    boxes.forEach((box) => box.closest(".pick").classList.toggle("picked", box.checked));
  }
  let last = null;
  boxes.forEach((box, index) => {
    box.addEventListener("click", (event) => {
      if (event.shiftKey && last !== null) {
        const [from, to] = [Math.min(last, index), Math.max(last, index)];
        boxes.slice(from, to + 1).forEach((other) => { other.checked = box.checked; });
      }
      last = index;
      update();
    });
  });
  document.getElementById("pick-all").addEventListener("click", () => { boxes.forEach((box) => { box.checked = true; }); update(); });
  document.getElementById("pick-none").addEventListener("click", () => { boxes.forEach((box) => { box.checked = false; }); update(); });
  update();
})();
