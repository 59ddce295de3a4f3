// Draw each chart of a model page from the JSON spec beside it, with the vendored Plotly (no network).
(function () {
  "use strict";
  var specs = document.querySelectorAll("script.chart-spec");
  var pending = [];
  Array.prototype.forEach.call(specs, function (script) {
    var spec = JSON.parse(script.textContent);
    var target = document.getElementById(script.getAttribute("data-target"));
    pending.push(window.Plotly.newPlot(target, spec.data, spec.layout, spec.config).then(function () {
      target.setAttribute("data-rendered", "true");
    }));
  });
  Promise.all(pending).then(function () {
    document.body.setAttribute("data-charts", "rendered");
  });
})();
