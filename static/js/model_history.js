// The model page's history chart: draw the figure the server built (JSON in #model-history-figure) with our
// own plotly.js (no inline script: the Content-Security-Policy allows none).
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("model-history-figure");
    var plot = document.getElementById("model-history-plot");
    if (!holder || !plot || !window.Plotly) return;
    var figure = JSON.parse(JSON.parse(holder.textContent));
    window.Plotly.react(plot, figure.data, figure.layout, {responsive: true, displaylogo: false});
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
