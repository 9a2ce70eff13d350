"""Data-generating processes of common teaching examples, with their true parameters.

* :func:`longitudinal` -- the sleep-deprivation design of Barr's *Learning Statistical Models
  Through Simulation in R* (ch. 5): subjects measured on consecutive days, correlated random
  intercepts and slopes;
* :func:`nested` -- a multi-level regression tutorial's students in schools (optionally classes in
  schools), a treatment effect that varies by school;
* :func:`crossed` -- the same tutorial's students crossed with raters.

Each returns a :class:`Simulation`: the data, the formula that matches the
process, and the truth laid out like a fit's extractors (``fixef`` Series,
``varcorr`` DataFrame, ``sigma``, ``ranef``), so recovery can be checked by
comparing like with like.

>>> import hierbayes as hb
>>> sim = hb.simulate.nested(n_groups=10, n_per_group=20, seed=1)
>>> sim.data.shape, sim.formula
((200, 3), 'y ~ treatment + (1 + treatment | school)')
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hierbayes.errors import DataError


@dataclass(frozen=True)
class Simulation:
    """Simulated data and the parameters that generated it.

    Attributes
    ----------
    data
        The simulated data frame.
    formula
        The lme4 formula of the generating model.
    fixef
        True fixed effects, named as a fit names them.
    varcorr
        True variance components, laid out like ``fit.varcorr``.
    sigma
        True residual SD.
    ranef
        The random effects actually drawn, per grouping factor (levels x terms).
    """

    data: pd.DataFrame
    formula: str
    fixef: pd.Series
    varcorr: pd.DataFrame
    sigma: float
    ranef: dict[str, pd.DataFrame] = field(default_factory=dict)


def _cov(sd: tuple[float, float], corr: float) -> np.ndarray:
    if not -1 < corr < 1:
        raise DataError(f"corr must be strictly between -1 and 1, got {corr}")
    if min(sd) < 0:
        raise DataError(f"standard deviations must be >= 0, got {sd}")
    return np.array([[sd[0] ** 2, corr * sd[0] * sd[1]], [corr * sd[0] * sd[1], sd[1] ** 2]])


def _vc_rows(group: str, terms: tuple[str, str], sd: tuple[float, float], corr: float | None) -> list[tuple]:
    rows = [(group, terms[0], None, sd[0] ** 2, sd[0]), (group, terms[1], None, sd[1] ** 2, sd[1])]
    if corr is not None:
        rows.append((group, terms[0], terms[1], corr * sd[0] * sd[1], corr))
    return rows


def _frame(rows: list[tuple], sigma: float) -> pd.DataFrame:
    rows = [*rows, ("Residual", None, None, sigma**2, sigma)]
    return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _labels(prefix: str, n: int) -> list[str]:
    width = len(str(n))
    return [f"{prefix}{i + 1:0{width}d}" for i in range(n)]


def longitudinal(
    n_subjects: int = 18,
    n_days: int = 10,
    intercept: float = 251.4,
    slope: float = 10.5,
    sd_intercept: float = 24.7,
    sd_slope: float = 5.9,
    corr: float = 0.07,
    sigma: float = 25.6,
    seed: int | np.random.Generator | None = None,
) -> Simulation:
    """Sleepstudy-like repeated measures: ``Reaction ~ Days + (Days | Subject)``.

    Defaults are lme4's REML estimates for sleepstudy, so the simulated data
    look like the real study.

    Examples
    --------
    >>> sim = longitudinal(seed=3)
    >>> sim.data.columns.tolist(), len(sim.data)
    (['Subject', 'Days', 'Reaction'], 180)
    """
    rng = _rng(seed)
    b = rng.multivariate_normal([0, 0], _cov((sd_intercept, sd_slope), corr), size=n_subjects)
    subjects = _labels("S", n_subjects)
    g = np.repeat(np.arange(n_subjects), n_days)
    days = np.tile(np.arange(n_days), n_subjects)
    y = intercept + b[g, 0] + (slope + b[g, 1]) * days + rng.normal(0, sigma, len(g))
    data = pd.DataFrame(
        {"Subject": pd.Categorical(np.array(subjects)[g], categories=subjects), "Days": days, "Reaction": y}
    )
    return Simulation(
        data=data,
        formula="Reaction ~ Days + (Days | Subject)",
        fixef=pd.Series({"(Intercept)": intercept, "Days": slope}),
        varcorr=_frame(_vc_rows("Subject", ("(Intercept)", "Days"), (sd_intercept, sd_slope), corr), sigma),
        sigma=sigma,
        ranef={"Subject": pd.DataFrame(b, index=pd.Index(subjects, name="Subject"), columns=["(Intercept)", "Days"])},
    )


def nested(
    n_groups: int = 30,
    n_per_group: int = 20,
    intercept: float = 10.0,
    effect: float = 2.0,
    sd_intercept: float = 1.0,
    sd_effect: float = 0.5,
    corr: float = -0.3,
    sigma: float = 1.0,
    n_subgroups: int | None = None,
    sd_subgroup: float = 0.5,
    seed: int | np.random.Generator | None = None,
) -> Simulation:
    """Students in schools (nested): ``y ~ treatment + (1 + treatment | school)``.

    Half of each school's students are treated. With ``n_subgroups`` each
    school has that many classes with their own random intercept, and the
    formula becomes ``y ~ treatment + (1 + treatment | school) + (1 | school:class)``.

    Examples
    --------
    >>> sim = nested(n_groups=5, n_per_group=50, seed=123)
    >>> sorted(sim.data["treatment"].unique())
    ['control', 'treated']
    """
    if n_per_group < 2:
        raise DataError("n_per_group must be at least 2 (half control, half treated)")
    rng = _rng(seed)
    b = rng.multivariate_normal([0, 0], _cov((sd_intercept, sd_effect), corr), size=n_groups)
    schools = _labels("school", n_groups)
    g = np.repeat(np.arange(n_groups), n_per_group)
    treated = np.tile(np.arange(n_per_group) >= n_per_group // 2, n_groups)
    mu = intercept + b[g, 0] + (effect + b[g, 1]) * treated
    data = {
        "school": pd.Categorical(np.array(schools)[g], categories=schools),
        "treatment": np.where(treated, "treated", "control"),
    }
    formula = "y ~ treatment + (1 + treatment | school)"
    rows = _vc_rows("school", ("(Intercept)", "treatmenttreated"), (sd_intercept, sd_effect), corr)
    ranef = {
        "school": pd.DataFrame(b, index=pd.Index(schools, name="school"), columns=["(Intercept)", "treatmenttreated"])
    }
    if n_subgroups:
        classes = _labels("class", n_subgroups)
        c = np.tile(np.repeat(np.arange(n_subgroups), -(-n_per_group // n_subgroups))[:n_per_group], n_groups)
        u = rng.normal(0, sd_subgroup, (n_groups, n_subgroups))
        mu = mu + u[g, c]
        data["class"] = np.array(classes)[c]
        formula = "y ~ treatment + (1 + treatment | school) + (1 | school:class)"
        rows = [("school:class", "(Intercept)", None, sd_subgroup**2, sd_subgroup), *rows]
        ranef["school:class"] = pd.DataFrame(
            {"(Intercept)": u.ravel()},
            index=pd.Index([f"{s}:{k}" for s in schools for k in classes], name="school:class"),
        )
    data["y"] = mu + rng.normal(0, sigma, len(g))
    return Simulation(
        data=pd.DataFrame(data),
        formula=formula,
        fixef=pd.Series({"(Intercept)": intercept, "treatmenttreated": effect}),
        varcorr=_frame(rows, sigma),
        sigma=sigma,
        ranef=ranef,
    )


def crossed(
    n_students: int = 40,
    n_raters: int = 6,
    intercept: float = 50.0,
    effect: float = 3.0,
    sd_rater: float = 2.0,
    sd_rater_effect: float = 0.7,
    corr: float = 0.0,
    sd_student: float = 1.5,
    sigma: float = 2.0,
    seed: int | np.random.Generator | None = None,
) -> Simulation:
    """Students crossed with raters: ``score ~ treatment + (1 + treatment | rater) + (1 | student)``.

    Every rater scores every student under both treatments.

    Examples
    --------
    >>> sim = crossed(seed=123)
    >>> len(sim.data), sim.data["rater"].nunique(), sim.data["student"].nunique()
    (480, 6, 40)
    """
    rng = _rng(seed)
    r = rng.multivariate_normal([0, 0], _cov((sd_rater, sd_rater_effect), corr), size=n_raters)
    s = rng.normal(0, sd_student, n_students)
    students, raters = _labels("st", n_students), _labels("r", n_raters)
    si, ri, ti = (a.ravel() for a in np.meshgrid(np.arange(n_students), np.arange(n_raters), [0, 1], indexing="ij"))
    score = intercept + r[ri, 0] + (effect + r[ri, 1]) * ti + s[si] + rng.normal(0, sigma, len(si))
    data = pd.DataFrame(
        {
            "student": pd.Categorical(np.array(students)[si], categories=students),
            "rater": pd.Categorical(np.array(raters)[ri], categories=raters),
            "treatment": np.where(ti == 1, "treated", "control"),
            "score": score,
        }
    )
    rows = [("student", "(Intercept)", None, sd_student**2, sd_student)]
    rows += _vc_rows("rater", ("(Intercept)", "treatmenttreated"), (sd_rater, sd_rater_effect), corr)
    return Simulation(
        data=data,
        formula="score ~ treatment + (1 + treatment | rater) + (1 | student)",
        fixef=pd.Series({"(Intercept)": intercept, "treatmenttreated": effect}),
        varcorr=_frame(rows, sigma),
        sigma=sigma,
        ranef={
            "rater": pd.DataFrame(r, index=pd.Index(raters, name="rater"), columns=["(Intercept)", "treatmenttreated"]),
            "student": pd.DataFrame({"(Intercept)": s}, index=pd.Index(students, name="student")),
        },
    )
