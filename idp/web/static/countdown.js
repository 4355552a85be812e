// Live countdown until «Отправить SMS-код повторно» is allowed again.
(function () {
  var button = document.getElementById("resend");
  var out = document.querySelector("#countdown [data-seconds]");
  if (!button || !out) return;
  var left = parseInt(button.getAttribute("data-wait"), 10) || 0;
  var tick = setInterval(function () {
    left -= 1;
    if (left <= 0) {
      clearInterval(tick);
      button.disabled = false;
      document.getElementById("countdown").textContent = "";
      return;
    }
    out.textContent = String(left);
  }, 1000);
})();
