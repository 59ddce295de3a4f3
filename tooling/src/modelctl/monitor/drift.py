"""Drift of each logged column against the reference, with SciPy's two-sample tests (or PSI).

Numbers: Kolmogorov-Smirnov (``scipy.stats.ks_2samp``), drifted when its p-value is below ``monitor.threshold``.
Categories (text labels, booleans, hashed fields): chi-square on the 2 x k table of counts
(``scipy.stats.chi2_contingency``). PSI (population stability index over the reference's deciles, or its
categories) when ``monitor.numeric_test`` / ``categorical_test`` say ``psi``: drifted above ``psi_threshold``.
A text column with more distinct values than :data:`MAX_CATEGORIES` is not tested (its derived ``.length`` is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelkit import predlog

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    from modelkit.config import Monitor

MAX_CATEGORIES = 50
PSI_BINS = 10
_EPS = 1e-4


@dataclass(frozen=True)
class ColumnDrift:
    name: str  # the log column (feature.<field>, prediction.label, ...)
    role: str  # "feature", "prediction" (the answer itself) or "prediction detail" (e.g. its confidence)
    test: str  # ks, chi2, psi
    statistic: float
    p_value: float | None  # None for PSI
    drifted: bool
    reference_rows: int
    live_rows: int

    @property
    def label(self) -> str:
        return self.name.removeprefix(predlog.FEATURE)


def role_of(name: str) -> str | None:
    if name.startswith(predlog.FEATURE):
        return "feature"
    if name in (predlog.LABEL, predlog.VALUE):
        return "prediction"
    if name.startswith(predlog.PREDICTION):
        return "prediction detail"
    return None


def _numbers(column: Any) -> np.ndarray:
    import numpy as np

    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    return values[np.isfinite(values)]


def _counts(column: Any) -> dict[str, int]:
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    values = pc.drop_null(column)
    if not len(values):
        return {}
    return {str(item["values"]): int(item["counts"]) for item in pc.value_counts(values).to_pylist()}


def psi_numeric(reference: np.ndarray, live: np.ndarray, bins: int = PSI_BINS) -> float:
    import numpy as np

    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        edges = np.array([reference.min() - 0.5, reference.max() + 0.5])
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(live, edges)[0] / len(live)
    return _psi(expected, actual)


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    import numpy as np

    e = np.clip(expected, _EPS, None)
    a = np.clip(actual, _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_drift(name: str, reference: np.ndarray, live: np.ndarray, settings: Monitor) -> ColumnDrift:
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    role = role_of(name) or "feature"
    if settings.numeric_test == "psi":
        value = psi_numeric(reference, live)
        return ColumnDrift(name, role, "psi", value, None, value > settings.psi_threshold, len(reference), len(live))
    result = stats.ks_2samp(reference, live)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    return ColumnDrift(name, role, "ks", statistic, p_value, p_value < settings.threshold, len(reference), len(live))


def categorical_drift(name: str, reference: dict[str, int], live: dict[str, int], settings: Monitor) -> ColumnDrift:
    """``reference`` and ``live``: count per category."""
    import numpy as np
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    role = role_of(name) or "feature"
    categories = sorted(set(reference) | set(live))
    ref_counts = np.array([reference.get(c, 0) for c in categories], dtype=np.float64)
    live_counts = np.array([live.get(c, 0) for c in categories], dtype=np.float64)
    rows = int(ref_counts.sum()), int(live_counts.sum())
    if settings.categorical_test == "psi":
        value = _psi(ref_counts / ref_counts.sum(), live_counts / live_counts.sum())
        return ColumnDrift(name, role, "psi", value, None, value > settings.psi_threshold, *rows)
    if len(categories) < 2:
        return ColumnDrift(name, role, "chi2", 0.0, 1.0, False, *rows)
    statistic, p_value, _, _ = stats.chi2_contingency(np.vstack([ref_counts, live_counts]))
    p = float(p_value)
    return ColumnDrift(name, role, "chi2", float(statistic), p, p < settings.threshold, *rows)


def compare(reference: pa.Table, live: pa.Table, settings: Monitor) -> tuple[list[ColumnDrift], list[str]]:
    """Drift of every feature and prediction column both tables have; and the columns not tested, with why."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    results: list[ColumnDrift] = []
    skipped: list[str] = []
    for name in reference.column_names:
        if role_of(name) is None:
            continue
        if name not in live.column_names:
            skipped.append(f"{name}: not in the log (a field dropped as sensitive, or a new schema)")
            continue
        ref_col, live_col = reference.column(name), live.column(name)
        numeric = pa.types.is_floating(ref_col.type) and pa.types.is_floating(live_col.type)
        if numeric:
            ref_values, live_values = _numbers(ref_col), _numbers(live_col)
            if len(ref_values) and len(live_values):
                results.append(numeric_drift(name, ref_values, live_values, settings))
            else:
                skipped.append(f"{name}: no values")
            continue
        ref_text, live_text = _counts(ref_col.cast(pa.string())), _counts(live_col.cast(pa.string()))
        if not ref_text or not live_text:
            skipped.append(f"{name}: no values")
        elif len(ref_text) > MAX_CATEGORIES:
            skipped.append(f"{name}: more than {MAX_CATEGORIES} distinct values (its derived statistics are tested)")
        else:
            results.append(categorical_drift(name, ref_text, live_text, settings))
    return results, skipped


def share_drifted(results: list[ColumnDrift]) -> float:
    features = [r for r in results if r.role == "feature"]
    return sum(r.drifted for r in features) / len(features) if features else 0.0


def verdict(results: list[ColumnDrift], settings: Monitor) -> bool:
    """Drift: at least ``drift_share`` of the features drifted, or the predictions themselves did."""
    share = share_drifted(results)
    prediction = any(r.drifted for r in results if r.role == "prediction")
    return prediction or (share > 0 and share + 1e-12 >= settings.drift_share)


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
