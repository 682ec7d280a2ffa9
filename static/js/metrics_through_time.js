// Draw the figure the server built (JSON in #mtt-figure) with our own plotly.js, on load and after
// every htmx swap of the chart (a new metric or a new pick of models).
(function () {
  function draw() {
    var holder = document.getElementById("mtt-figure");
    var plot = document.getElementById("mtt-plot");
    if (!holder || !plot || !window.Plotly) return;
    var figure = JSON.parse(JSON.parse(holder.textContent));
    window.Plotly.react(plot, figure.data, figure.layout, {responsive: true, displaylogo: false});
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
})();
