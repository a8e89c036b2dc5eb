// The prior-studies strip lists a patient's studies earlier first; open it at its newest end (or at the
// study shown beside this one), which is the film a reader compares with first.
(function () {
  document.querySelectorAll(".priors-strip").forEach((strip) => {
    const compared = strip.querySelector("figure.compared");
    strip.scrollLeft = compared ? compared.offsetLeft - strip.offsetLeft - strip.clientWidth / 2 : strip.scrollWidth;
  });
})();
