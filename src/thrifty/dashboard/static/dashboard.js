// Draws the dashboard's charts from the JSON block the server embedded in the page.
// The tables on the page hold the same numbers; this only adds pictures.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  const usd = (v) => "$" + (Math.abs(v) >= 100 ? v.toFixed(2) : Number(v.toPrecision(4)).toString());
  const money = { ticks: { callback: (v) => usd(v) } };
  const colors = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f",
                  "#be185d", "#64748b", "#ca8a04"];
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = "system-ui, sans-serif";

  new Chart(document.getElementById("chart-spend"), {
    type: "line",
    data: {
      labels: data.series.labels,
      datasets: [
        { label: "spend", data: data.series.cost, borderColor: colors[0], backgroundColor: colors[0] },
        { label: "baseline", data: data.series.baseline, borderColor: colors[8],
          backgroundColor: colors[8], borderDash: [4, 4] },
        { label: "saved", data: data.series.savings, borderColor: colors[1], backgroundColor: colors[1] },
      ],
    },
    options: { scales: { y: money }, interaction: { mode: "index", intersect: false },
               plugins: { tooltip: { callbacks: { label: (c) => c.dataset.label + ": " + usd(c.parsed.y) } } } },
  });

  // Waterfall: totals stand on zero, each technique floats from the running total.
  let running = 0;
  const bars = data.waterfall.map((s) => {
    if (s.kind === "total") { running = s.value; return [0, s.value]; }
    const from = running; running += s.value; return [from, running];
  });
  new Chart(document.getElementById("chart-waterfall"), {
    type: "bar",
    data: {
      labels: data.waterfall.map((s) => s.label),
      datasets: [{
        label: "USD", data: bars,
        backgroundColor: data.waterfall.map((s) =>
          s.kind === "total" ? colors[8] : s.value <= 0 ? colors[1] : colors[2]),
      }],
    },
    options: { scales: { y: money }, plugins: { legend: { display: false },
      tooltip: { callbacks: { label: (c) => usd(data.waterfall[c.dataIndex].value) } } } },
  });

  for (const [name, groups] of Object.entries(data.groups)) {
    new Chart(document.getElementById("chart-" + name), {
      type: "bar",
      data: { labels: groups.map((g) => g.key),
              datasets: [{ label: "cost", data: groups.map((g) => g.cost), backgroundColor: colors[0] }] },
      options: { indexAxis: "y", scales: { x: money }, plugins: { legend: { display: false },
        tooltip: { callbacks: { label: (c) => usd(c.parsed.x) } } } },
    });
  }
})();
