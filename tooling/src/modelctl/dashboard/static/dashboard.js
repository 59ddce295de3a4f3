// The overview's filter and sort: plain DOM, no library, no network (issue 23).
(function () {
  "use strict";
  var table = document.getElementById("models");
  if (!table) {
    return;
  }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var filter = document.getElementById("filter");
  var attentionOnly = document.getElementById("attention-only");
  var shown = document.getElementById("shown");
  // Lower-cased text of each row, computed once: filtering 1,000 rows stays a string search.
  var texts = rows.map(function (row) {
    return row.textContent.replace(/\s+/g, " ").toLowerCase();
  });

  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var onlyAttention = attentionOnly.checked;
    var count = 0;
    rows.forEach(function (row, index) {
      var visible = (!onlyAttention || row.getAttribute("data-attention") === "1") &&
        words.every(function (word) { return texts[index].indexOf(word) !== -1; });
      row.hidden = !visible;
      if (visible) {
        count += 1;
      }
    });
    shown.textContent = count + " of " + rows.length + " models shown";
  }

  function sortValue(row, column) {
    var cell = row.cells[column];
    var value = cell.getAttribute("data-sort");
    return value === null ? cell.textContent.trim().toLowerCase() : value.toLowerCase();
  }

  function sortBy(button) {
    var column = Number(button.getAttribute("data-column"));
    var numeric = button.getAttribute("data-type") === "number";
    var header = button.parentNode;
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var keyed = rows.map(function (row, index) {
      var value = sortValue(row, column);
      return { row: row, index: index, value: numeric ? Number(value) : value };
    });
    keyed.sort(function (a, b) {
      var order = a.value < b.value ? -1 : a.value > b.value ? 1 : a.index - b.index;
      return ascending ? order : -order;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (item) { fragment.appendChild(item.row); });
    body.appendChild(fragment);
    rows = keyed.map(function (item) { return item.row; });
    texts = rows.map(function (row) { return row.textContent.replace(/\s+/g, " ").toLowerCase(); });
  }

  filter.addEventListener("input", applyFilter);
  attentionOnly.addEventListener("change", applyFilter);
  Array.prototype.forEach.call(table.querySelectorAll("thead button[data-column]"), function (button) {
    button.addEventListener("click", function () { sortBy(button); });
  });
  if (window.location.hash === "#attention") {
    attentionOnly.checked = true;
  }
  applyFilter();
})();
