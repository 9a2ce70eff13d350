"""hb.emmeans / hb.contrast / hb.emtrends against R's emmeans 1.8.4 (tests/reference/make_emmeans.R).

Two levels:

* the arithmetic: the linear functions (emmeans' ``linfct``) equal R's, and with
  R's fixed effects and covariance (the fit's ``beta`` and ``vcov`` /
  ``pbkrtest::vcovAdj``) every estimate, SE, interval, t ratio and p-value
  equals R's, whatever our own fit's optimum;
* end to end: our own fits. The lmer fits agree with lme4's tight fits to
  about 1e-8, so estimates and SEs are checked to 1e-6 and df to 1e-4. The
  glmer fits (lme4's tight control) differ from ours by up to 1e-5 in the
  estimates and 3e-5 in the SEs on grouseticks, where our Laplace optimum is
  3e-6 log-likelihood units higher than lme4's: those are checked to 1e-4.

p-values are compared to 1e-4 relative, with an absolute floor of 1e-9
(R's ``ptukey`` is accurate to about 1e-12 absolute, so a Tukey p-value of
4e-12 is only good to ~10%) raised to 1e-6 for the glmer fits.
"""

from __future__ import annotations

import importlib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from tests.interpret import refcases as rc

REF = rc.reference()
EMM_IDS = list(rc.EMMEANS) + list(rc.TRENDS)
CON_IDS = list(rc.contrast_cases())
GLMM = {"cbpp", "grouse", "grouse_offset"}
emm_module = importlib.import_module("hierbayes.interpret.emmeans")


def _record(case_id: str) -> dict:
    for section in ("emmeans", "emtrends", "contrasts"):
        if case_id in REF[section]:
            return REF[section][case_id]
    raise KeyError(case_id)


def _fit_id(case_id: str) -> str:
    if case_id in rc.EMMEANS:
        return rc.EMMEANS[case_id][0]
    if case_id in rc.TRENDS:
        return rc.TRENDS[case_id][0]
    return _fit_id(rc.contrast_cases()[case_id][0])


def _numeric(col: pd.Series) -> bool:
    return all(v is None or isinstance(v, (int, float)) for v in col.tolist())


def _close(got, want, rtol: float, atol: float = 0.0, what: str = "") -> None:
    got = np.asarray(got, dtype=float)
    want = rc.as_float(want)
    inf = np.isinf(want)
    assert np.array_equal(np.isinf(got), inf), f"{what}: infinite df differ: {got} vs {want}"
    np.testing.assert_allclose(got[~inf], want[~inf], rtol=rtol, atol=atol, err_msg=what)


def _check_table(
    got: pd.DataFrame, rec: dict, rtol: float, df_rtol: float, p_atol: float, ci_rtol: float | None = None
) -> None:
    """Columns, labels and values of a table; interval bounds to ``ci_rtol`` (they move with the df's t quantile)."""
    columns = rec["columns"]
    ci_rtol = rtol if ci_rtol is None else ci_rtol
    want = pd.DataFrame(rec["table"])
    assert list(got.columns) == list(columns)
    est = columns[len(want.columns) - len([c for c in columns if c in ("SE", "df", "null", "t.ratio", "z.ratio",
                                                                      "p.value", "lower.CL", "upper.CL",
                                                                      "asymp.LCL", "asymp.UCL")]) - 1]  # fmt: skip
    nonest = want[est].isna().to_numpy()  # emmeans' nonEst rows (null in every numeric column)
    if nonest.any():
        numeric = [c for c in columns if _numeric(want[c])]
        assert got.loc[nonest, numeric].isna().all().all()
        got, want = got.loc[~nonest].reset_index(drop=True), want.loc[~nonest].reset_index(drop=True)
    scale = np.abs(rc.as_float(want["SE"])) if "SE" in want else 1.0
    for c in columns:
        if not _numeric(want[c]):
            assert got[c].astype(str).tolist() == want[c].astype(str).tolist(), c
        elif c == "df":
            _close(got[c], want[c], df_rtol, what="df")
        elif c == "p.value":
            _close(got[c], want[c], 1e-4, p_atol, what="p.value")
        elif c in ("lower.CL", "upper.CL", "asymp.LCL", "asymp.UCL"):
            # bounds near zero: compare against the size of the interval's half width
            _close(got[c], want[c], ci_rtol, atol=float(np.max(ci_rtol * 10 * scale)), what=c)
        else:
            _close(got[c], want[c], rtol, what=c)


# ---------------------------------------------------------------------------------------------------------------------
# the linear functions
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", [c for c in EMM_IDS if "regrid" not in c])
def test_linear_functions_are_emmeans(case_id):
    rec = _record(case_id)
    grid = rc.emm(case_id).grid
    got = grid.linfct if grid.linfct_full is None else grid.linfct_full  # R's has every column of X
    want = np.array(rec["linfct"], dtype=float)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    fit = rc.fit(_fit_id(case_id))
    assert list(fit.design.x_names) == REF["fits"][_fit_id(case_id)]["X_colnames"]


@pytest.mark.parametrize("fit_id", list(rc.FITS))
def test_reference_grid_levels_and_covariate_means(fit_id):
    from hierbayes.interpret.grid import reference_grid

    rec = REF["ref_grids"][fit_id]
    fit = rc.fit(fit_id)
    rg = reference_grid(fit)
    levels = {k: v for k, v in rec["levels"].items() if k != ".offset."}
    assert [v.name for v in rg.variables] == list(levels)
    if ".offset." in rec["levels"]:  # emmeans' offset: the mean of the rows' offsets (not the offset at the means)
        emm = hb.emmeans(fit, next(iter(levels)))
        np.testing.assert_allclose(emm.grid.offset, [g[".offset."] for g in rec["grid"]], rtol=1e-12)
    for v in rg.variables:
        want = levels[v.name]
        if v.kind == "factor":
            assert rg.labels(v) == want
        else:
            np.testing.assert_allclose(rg.labels(v), want, rtol=1e-12, atol=1e-14)
    assert len(rg.data) == len(rec["grid"])


# ---------------------------------------------------------------------------------------------------------------------
# the arithmetic, with R's fixed effects and covariance
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture
def r_coefficients(monkeypatch):
    """Make hb.emmeans use R's beta and V (pbkrtest's adjusted V for Kenward-Roger) instead of our fit's."""
    original = emm_module.fit_basis

    def patched(fit, df=None):
        basis = original(fit, df)
        fid = next(k for k in rc.FITS if rc.fit(k) is fit)
        rec = REF["fits"][fid]
        V = rec["vcov_kenward_roger"] if basis.df_method == "kenward-roger" else rec["vcov"]
        return replace(basis, coef=np.array(list(rec["beta"].values()), float), vcov=np.array(V["values"], float))

    monkeypatch.setattr(emm_module, "fit_basis", patched)


@pytest.mark.parametrize("case_id", EMM_IDS)
def test_emmeans_arithmetic_with_R_coefficients(case_id, r_coefficients):
    _check_table(rc.emm(case_id), _record(case_id), rtol=1e-9, df_rtol=1e-4, p_atol=1e-12, ci_rtol=1e-6)


@pytest.mark.parametrize("case_id", CON_IDS)
def test_contrast_arithmetic_with_R_coefficients(case_id, r_coefficients):
    emm_id, method, kw = rc.contrast_cases()[case_id]
    rec = _record(case_id)
    con = hb.contrast(rc.emm(emm_id), method, **kw)
    _check_table(con, rec, rtol=1e-9, df_rtol=1e-4, p_atol=1e-9)
    ci_rtol = 1e-3 if rec["adjust_applied"] == "dunnettx" else 1e-6  # R's dunnettx quantile: uniroot, tol 5e-4
    _check_table(con.confint(), rec["confint"], rtol=1e-9, df_rtol=1e-4, p_atol=0, ci_rtol=ci_rtol)


# ---------------------------------------------------------------------------------------------------------------------
# end to end, with our fits
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", EMM_IDS)
def test_emmeans_end_to_end(case_id):
    glmm = _fit_id(case_id) in GLMM
    got = rc.emm(case_id)
    rec = _record(case_id)
    _check_table(got, rec, rtol=1e-4 if glmm else 1e-6, df_rtol=1e-4, p_atol=1e-6)
    assert got.messages == rec["messages_printed"]


@pytest.mark.parametrize("case_id", CON_IDS)
def test_contrast_end_to_end(case_id):
    glmm = _fit_id(case_id) in GLMM
    emm_id, method, kw = rc.contrast_cases()[case_id]
    rec = _record(case_id)
    con = hb.contrast(rc.emm(emm_id), method, **kw)
    tol = 1e-4 if glmm else 1e-6
    _check_table(con, rec, rtol=tol, df_rtol=1e-4, p_atol=1e-6 if glmm else 1e-9)
    assert con.messages == rec["messages_printed"]
    ci = con.confint()
    ci_rtol = max(tol, 1e-3 if rec["adjust_applied"] == "dunnettx" else 0)
    _check_table(ci, rec["confint"], rtol=tol, df_rtol=1e-4, p_atol=0, ci_rtol=ci_rtol)
    assert ci.attrs["messages"] == rec["confint"]["messages_printed"]
    changed = rec["adjust_requested"] == "tukey" and rec["adjust_applied"] == "sidak"
    assert any('changed to "sidak"' in n for n in con.notes) == changed


def test_polynomial_contrast_coefficients_are_emmeans():
    """emmeans' poly.emmc(1:5) and poly.emmc(1:7), printed by R 4.2.2 / emmeans 1.8.4-1."""
    from hierbayes.interpret.contrast import _poly

    names, C = _poly(5)
    assert names == ["linear", "quadratic", "cubic", "quartic"]
    np.testing.assert_array_equal(C, [[-2, -1, 0, 1, 2], [2, -1, -2, -1, 2], [-1, 2, 0, -2, 1], [1, -4, 6, -4, 1]])
    names, C = _poly(7)
    assert names == ["linear", "quadratic", "cubic", "quartic", "degree 5", "degree 6"]
    np.testing.assert_array_equal(C, [[-3, -2, -1, 0, 1, 2, 3], [5, 0, -3, -4, -3, 0, 5], [-1, 1, 1, 0, -1, -1, 1],
                                      [3, -7, 1, 6, 1, -7, 3], [-1, 4, -5, 0, 5, -4, 1],
                                      [1, -6, 15, -20, 15, -6, 1]])  # fmt: skip


def test_tukey_p_values_use_the_studentized_range():
    """Tukey's p-value is P(Q_{k,df} > sqrt(2) |t|), as ptukey: checked directly on one row."""
    from scipy import stats

    rec = _record("oats_N_by_variety_pairwise_tukey")
    row = rec["table"][0]
    p = stats.studentized_range.sf(np.sqrt(2) * abs(row["t.ratio"]), 4, row["df"])
    assert p == pytest.approx(row["p.value"], rel=1e-6)


def test_interaction_note_as_emmeans_gives_it():
    emm = rc.emm("oats_N_kr")
    assert "NOTE: Results may be misleading due to involvement in interactions" in emm.notes
    assert _record("oats_N_kr")["messages"] == ["NOTE: Results may be misleading due to involvement in interactions"]
    assert not rc.emm("oats_N_by_variety_kr").notes


# ---------------------------------------------------------------------------------------------------------------------
# lme4's predictions with delta-method SEs
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pred_id", list(REF["predictions"]))
def test_population_predictions_and_delta_method_intervals(pred_id):
    rec = REF["predictions"][pred_id]
    fit = rc.fit(rec["fit"])
    glmm = rec["fit"] in GLMM
    tol = 1e-4 if glmm else 1e-6
    nd = pd.DataFrame(rec["newdata"])
    kw = {"type": "link"} if glmm else {}
    link = fit.predict(nd, re_form="NA", interval="confidence", **kw)
    np.testing.assert_allclose(link["estimate"], rec["link_re_form_NA"], rtol=tol)
    np.testing.assert_allclose(link["std_error"], rec["se_link_population"], rtol=tol)
    np.testing.assert_allclose(link["lower"], rec["ci95_link_population"]["lower"], rtol=tol)
    np.testing.assert_allclose(link["upper"], rec["ci95_link_population"]["upper"], rtol=tol)
    cond = fit.predict(nd, allow_new_levels=True, **kw)
    np.testing.assert_allclose(cond, rec["link_re_form_NULL"], rtol=tol)
    if glmm:
        resp = fit.predict(nd, re_form="NA", interval="confidence", type="response")
        np.testing.assert_allclose(resp["estimate"], rec["response_re_form_NA"], rtol=tol)
        np.testing.assert_allclose(resp["std_error"], rec["se_response_population"], rtol=tol)
        np.testing.assert_allclose(resp["lower"], rec["ci95_response_population"]["lower"], rtol=tol)
        np.testing.assert_allclose(resp["upper"], rec["ci95_response_population"]["upper"], rtol=tol)
        np.testing.assert_allclose(fit.predict(nd, allow_new_levels=True, type="response"),
                                   rec["response_re_form_NULL"], rtol=tol)  # fmt: skip


@pytest.mark.parametrize("pred_id", ["sleep_slope", "cbpp"])
def test_hb_predictions_on_a_grid_match_lme4(pred_id):
    """hb.predictions at a crossed grid equals lme4's predict (population level, and conditional on the modes)."""
    rec = REF["predictions"][pred_id]
    fit = rc.fit(rec["fit"])
    nd = pd.DataFrame(rec["newdata"])
    group = "Subject" if pred_id == "sleep_slope" else "herd"
    x = "Days" if pred_id == "sleep_slope" else "period"
    known = nd[nd[group] != "NEW"]
    xs = list(dict.fromkeys(known[x]))
    pop = hb.predictions(fit, conditional={x: xs}, re_form="~0", type="response")
    want = pd.Series(rec["response_re_form_NA"])[: len(xs)] if pred_id == "sleep_slope" else None
    if want is not None:
        np.testing.assert_allclose(pop["estimate"], want, rtol=1e-6)
        np.testing.assert_allclose(pop["std_error"], rec["se_response_population"][: len(xs)], rtol=1e-6)
    else:
        np.testing.assert_allclose(pop["estimate"], rec["response_re_form_NA"][:4], rtol=1e-4)
        np.testing.assert_allclose(pop["lower"], rec["ci95_response_population"]["lower"][:4], rtol=1e-4)
    levels = list(dict.fromkeys(known[group]))
    cond = hb.predictions(fit, conditional={group: levels, x: xs})  # bambi's grid: first variable slowest
    n = len(known)
    np.testing.assert_allclose(cond["estimate"], rec["response_re_form_NULL"][:n], rtol=1e-4)
