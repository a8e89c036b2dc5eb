// Keyboard shortcuts must not fire while someone types: one test for every page's key handlers.
(function () {
  // a slider or toggle keeps focus after use: shortcuts still work there, not in text fields
  const NOT_TYPING = new Set(["range", "checkbox", "radio", "button", "submit", "reset"]);
  window.medalTyping = function (target) {
    if (!target) return false;
    if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    return target.tagName === "INPUT" && !NOT_TYPING.has(target.type);
  };
})();
