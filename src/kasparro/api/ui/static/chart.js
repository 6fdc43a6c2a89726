// The asset page's price history: one uPlot line per source, drag to zoom, double-click to
// zoom out. The data is the page's own JSON block (no second request).
"use strict";

(function () {
  // Ten hues, each at least 5.4:1 against the white background and far apart from each other
  // (CIELAB distance over 28); past ten sources the hues repeat with a dash pattern, so 40
  // lines differ in colour or dash (and every line is named in the legend beside its value).
  const COLOURS = [
    "#1f5fbf", "#b3261e", "#1b7a3a", "#8a4f00", "#6b2fa3",
    "#00707a", "#c2185b", "#5c6b00", "#4a4a4a", "#a0007d",
  ];
  const DASHES = [[], [10, 5], [2, 4], [12, 4, 2, 4]];

  function lineStyle(index) {
    const round = Math.floor(index / COLOURS.length) % DASHES.length;
    return { stroke: COLOURS[index % COLOURS.length], dash: DASHES[round] };
  }
  window.kasparroLineStyle = lineStyle;

  function usd(value) {
    if (value == null) return "-";
    const digits = Math.abs(value) >= 1 ? 2 : 6;
    return "$" + value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: digits });
  }

  // Axis ticks: short ($92.1K, $0.0012), so they fit beside the plot at phone width too.
  const COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumSignificantDigits: 4 });
  function axisUsd(value) {
    if (value == null) return "";
    return "$" + (Math.abs(value) >= 1 ? COMPACT.format(value) : value.toPrecision(3));
  }

  function draw() {
    const holder = document.getElementById("price-chart");
    const source = document.getElementById("chart-data");
    if (!holder || !source || typeof window.uPlot !== "function") return;
    const data = JSON.parse(source.textContent);
    const series = [{ label: "observed (UTC)" }].concat(
      data.sources.map(function (name, index) {
        const style = lineStyle(index);
        return {
          label: name,
          stroke: style.stroke,
          dash: style.dash,
          width: 2,
          spanGaps: true,
          points: { show: data.x.length < 60 },
          value: function (u, v) { return usd(v); },
        };
      })
    );
    const width = function () { return Math.max(280, holder.clientWidth); };
    const options = {
      width: width(),
      height: 320,
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      series: series,
      scales: { x: { time: true } },
      axes: [{}, { size: 90, values: function (u, ticks) { return ticks.map(axisUsd); } }],
      cursor: { drag: { x: true, y: false } },
    };
    const chart = new window.uPlot(options, [data.x].concat(data.y), holder);
    holder.dataset.series = String(data.sources.length);
    window.kasparroChart = chart;
    window.addEventListener("resize", function () {
      chart.setSize({ width: width(), height: 320 });
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
})();
