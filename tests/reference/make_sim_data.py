"""Write the simulated data sets used by the R reference script.

Run from the repository root:

    python tests/reference/make_sim_data.py

Every file is generated with ``numpy.random.default_rng`` and a fixed seed, so
R (``tests/reference/make_references.R``) and the Python test-suite read exactly
the same numbers.  The CSVs are committed; rerunning this script must reproduce
them byte for byte (floats are written with Python's shortest round-trip repr).

Grouping columns are strings whose lexicographic order equals the intended
level order (zero-padded ids), so ``factor(x)`` in R and sorted levels in
Python agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "data"


def _write(df: pd.DataFrame, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    df.to_csv(path, index=False, lineterminator="\n")
    print(f"wrote {path.relative_to(OUT.parent.parent.parent)} ({len(df)} rows)")


def sim_nested(seed: int = 3) -> pd.DataFrame:
    """Seed-003 nested design: 5 schools x 50 students, 25 control + 25 treated.

    y = 10 + a_school + b_school * treated + e,
    a ~ N(0, 1), b ~ N(2, 0.5), e ~ N(0, 1).
    """
    rng = np.random.default_rng(seed)
    n_school, n_per = 5, 50
    a = rng.normal(0.0, 1.0, n_school)
    b = rng.normal(2.0, 0.5, n_school)
    rows = []
    for s in range(n_school):
        treated = np.repeat([0, 1], n_per // 2)
        e = rng.normal(0.0, 1.0, n_per)
        y = 10.0 + a[s] + b[s] * treated + e
        for i in range(n_per):
            rows.append(
                {
                    "school": f"s{s + 1}",
                    "student": f"s{s + 1}_{i + 1:02d}",
                    "treatment": "treated" if treated[i] else "control",
                    "y": float(y[i]),
                }
            )
    return pd.DataFrame(rows)


def sim_nested2(seed: int = 31) -> pd.DataFrame:
    """30 schools x 3 classes x 8 students; class labels c1..c3 repeat across
    schools, so the model needs (1 | school/class).

    y = 5 + 0.5 x + u_school + u_class + e,
    u_school ~ N(0, 1), u_class ~ N(0, 0.7), e ~ N(0, 1), x ~ N(0, 1).
    """
    rng = np.random.default_rng(seed)
    n_school, n_class, n_stu = 30, 3, 8
    u_s = rng.normal(0.0, 1.0, n_school)
    u_c = rng.normal(0.0, 0.7, (n_school, n_class))
    rows = []
    for s in range(n_school):
        for c in range(n_class):
            x = rng.normal(0.0, 1.0, n_stu)
            e = rng.normal(0.0, 1.0, n_stu)
            y = 5.0 + 0.5 * x + u_s[s] + u_c[s, c] + e
            for i in range(n_stu):
                rows.append(
                    {
                        "school": f"s{s + 1:02d}",
                        "class": f"c{c + 1}",
                        "x": float(x[i]),
                        "y": float(y[i]),
                    }
                )
    return pd.DataFrame(rows)


def sim_crossed(seed: int = 3) -> pd.DataFrame:
    """Seed-003 crossed design: 40 students x 6 raters x 2 treatments.

    score = 50 + r0_rater + r1_rater * treated + u_student + e,
    r0 ~ N(0, 2), r1 ~ N(3, 0.7), u_student ~ N(0, 1.5), e ~ N(0, 2).
    (The student intercept gives the (1 | student) term something to estimate.)
    """
    rng = np.random.default_rng(seed)
    n_stu, n_rater = 40, 6
    r0 = rng.normal(0.0, 2.0, n_rater)
    r1 = rng.normal(3.0, 0.7, n_rater)
    u = rng.normal(0.0, 1.5, n_stu)
    rows = []
    for s in range(n_stu):
        for r in range(n_rater):
            for t in (0, 1):
                score = 50.0 + r0[r] + r1[r] * t + u[s] + rng.normal(0.0, 2.0)
                rows.append(
                    {
                        "student": f"st{s + 1:02d}",
                        "rater": f"r{r + 1}",
                        "treatment": "treated" if t else "control",
                        "score": float(score),
                    }
                )
    return pd.DataFrame(rows)


def sim_transforms(seed: int = 7) -> pd.DataFrame:
    """200 rows, 20 groups; formula-transform tests: log(x), scale(z), I(x^2), k.

    x ~ lognormal(0, 0.5) > 0, z ~ N(5, 2), k in {lo, mid, hi} (R sorts the
    levels alphabetically: hi, lo, mid), group intercept ~ N(0, 1), e ~ N(0, 1).
    y = 2 + 1.5 log(x) + 0.8 (z - 5) / 2 + 0.1 x^2 + {lo: 0, mid: 0.7, hi: 1.5} + u_g + e
    """
    rng = np.random.default_rng(seed)
    n, n_g = 200, 20
    g_idx = np.repeat(np.arange(n_g), n // n_g)
    u = rng.normal(0.0, 1.0, n_g)
    x = rng.lognormal(0.0, 0.5, n)
    z = rng.normal(5.0, 2.0, n)
    k = rng.choice(np.array(["lo", "mid", "hi"]), size=n)
    k_eff = np.select([k == "lo", k == "mid", k == "hi"], [0.0, 0.7, 1.5])
    e = rng.normal(0.0, 1.0, n)
    y = 2.0 + 1.5 * np.log(x) + 0.8 * (z - 5.0) / 2.0 + 0.1 * x**2 + k_eff + u[g_idx] + e
    return pd.DataFrame({"g": [f"g{i + 1:02d}" for i in g_idx], "x": x, "z": z, "k": k, "y": y})


def sim_rankdef(seed: int = 11) -> pd.DataFrame:
    """120 rows, 12 groups; x2 = 2 * x1 exactly (aliased), so lme4 drops x2."""
    rng = np.random.default_rng(seed)
    n, n_g = 120, 12
    g_idx = np.repeat(np.arange(n_g), n // n_g)
    u = rng.normal(0.0, 1.0, n_g)
    x1 = rng.normal(0.0, 1.0, n)
    x2 = 2.0 * x1
    x3 = rng.normal(0.0, 1.0, n)
    y = 1.0 + 0.5 * x1 - 0.3 * x3 + u[g_idx] + rng.normal(0.0, 1.0, n)
    return pd.DataFrame({"g": [f"g{i + 1:02d}" for i in g_idx], "x1": x1, "x2": x2, "x3": x3, "y": y})


def sim_binary(seed: int = 21) -> pd.DataFrame:
    """30 groups x 20 rows; logit P(y=1) = -0.5 + 1.0 x + u0_g + u1_g x,
    u0 ~ N(0, 1), u1 ~ N(0, 0.5), x ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    n_g, n_per = 30, 20
    u0 = rng.normal(0.0, 1.0, n_g)
    u1 = rng.normal(0.0, 0.5, n_g)
    g_idx = np.repeat(np.arange(n_g), n_per)
    x = rng.normal(0.0, 1.0, n_g * n_per)
    eta = -0.5 + 1.0 * x + u0[g_idx] + u1[g_idx] * x
    p = 1.0 / (1.0 + np.exp(-eta))
    y = (rng.uniform(size=eta.size) < p).astype(int)
    return pd.DataFrame({"g": [f"g{i + 1:02d}" for i in g_idx], "x": x, "y": y})


def sim_poisson_crossed(seed: int = 41) -> pd.DataFrame:
    """25 sites x 12 years (crossed); log mu = 1 + 0.3 x + u_site + v_year,
    u ~ N(0, 0.5), v ~ N(0, 0.3), x ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    n_site, n_year = 25, 12
    u = rng.normal(0.0, 0.5, n_site)
    v = rng.normal(0.0, 0.3, n_year)
    rows = []
    for s in range(n_site):
        for t in range(n_year):
            x = rng.normal(0.0, 1.0)
            mu = np.exp(1.0 + 0.3 * x + u[s] + v[t])
            rows.append(
                {
                    "site": f"site{s + 1:02d}",
                    "year": 2001 + t,
                    "x": float(x),
                    "count": int(rng.poisson(mu)),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    _write(sim_nested(), "sim_nested.csv")
    _write(sim_nested2(), "sim_nested2.csv")
    _write(sim_crossed(), "sim_crossed.csv")
    _write(sim_transforms(), "sim_transforms.csv")
    _write(sim_rankdef(), "sim_rankdef.csv")
    _write(sim_binary(), "sim_binary.csv")
    _write(sim_poisson_crossed(), "sim_poisson_crossed.csv")


if __name__ == "__main__":
    main()
