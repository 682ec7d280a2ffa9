// Draw the figure the server built (JSON in #mtt-figure) with our own plotly.js, on load and after
// every htmx swap of the chart (a new metric or a new pick of models) and back/forward.
(function () {
  function draw() {
    var holder = document.getElementById("mtt-figure");
    var plot = document.getElementById("mtt-plot");
    if (!holder || !plot || !window.Plotly) return;
    var figure = JSON.parse(JSON.parse(holder.textContent));
    if (!plot._fullLayout) plot.innerHTML = "";  // a page from htmx's history cache holds a stale drawing
    // The page's language: plotly's own Korean (static/vendor/plotly-locale-ko.js, loaded on Korean pages) for
    // the toolbar, or its default English when that locale is not registered.
    var locale = document.documentElement.lang || "en";
    // No "Share chart" button: it would upload the chart to Plotly Cloud (and has no Korean in plotly's locale).
    window.Plotly.react(plot, figure.data, figure.layout, {responsive: true, displaylogo: false, locale: locale,
                                                           modeBarButtonsToRemove: ["sendChartToCloud"]});
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
  document.addEventListener("htmx:historyRestore", draw);
})();
