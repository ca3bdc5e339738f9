// After an action the page comes back with a message saying what happened: move the focus
// there, so keyboard and screen-reader users hear it and continue from it.
document.addEventListener("DOMContentLoaded", function () {
  var target = document.querySelector("[data-focus]");
  if (target) {
    target.focus();
  }
});
