// The header's menus (<details>): one open at a time, closed by a click elsewhere or Escape.
(function () {
  const menus = Array.from(document.querySelectorAll("header details.nav-menu"));
  if (!menus.length) return;
  menus.forEach(menu => menu.addEventListener("toggle", () => {
    if (menu.open) menus.forEach(other => { if (other !== menu) other.open = false; });
  }));
  document.addEventListener("click", event => {
    menus.forEach(menu => { if (menu.open && !menu.contains(event.target)) menu.open = false; });
  });
  document.addEventListener("keydown", event => {
    if (event.key !== "Escape") return;
    menus.forEach(menu => { if (menu.open) { menu.open = false; menu.querySelector("summary").focus(); } });
  });
})();
