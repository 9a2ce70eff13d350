"""The R reference cases of tests/reference/emmeans_reference.json, as hierbayes calls.

Each emmeans/emtrends case maps to ``(fit id, function, keyword arguments)``; each
contrast case to ``(emmeans case, method, adjust)`` (adjust None: the method's default).
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

import hierbayes as hb

REF = Path(__file__).resolve().parents[1] / "reference"
ROOT = REF.parent.parent

FITS = {
    "oats_N": ("lmer", "yield ~ N * Variety + (1 | Block/Variety)", "oats", {}),
    "oats_nitro": ("lmer", "yield ~ nitro * Variety + (1 | Block/Variety)", "oats", {}),
    "sleep_slope": ("lmer", "Reaction ~ Days + (Days | Subject)", "sleepstudy", {}),
    "sleep_log": ("lmer", "log(Reaction) ~ Days + (Days | Subject)", "sleepstudy", {}),
    "cbpp": ("glmer", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", {"family": "binomial"}),
    "grouse": ("glmer", "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)", "grouseticks", {"family": "poisson"}),
    "sleep_unbal": ("lmer", "Reaction ~ Days + (Days | Subject)", "sleep_unbal", {}),
    "sleep_unbal_ml": ("lmer", "Reaction ~ Days + (Days | Subject)", "sleep_unbal", {"REML": False}),
    "oats_unbal": ("lmer", "yield ~ N * Variety + (1 | Block/Variety)", "oats_unbal", {}),
    "oats_fnitro": ("lmer", "yield ~ factor(nitro) + Variety + (1 | Block/Variety)", "oats", {}),
    "grouse_offset": (
        "glmer",
        "TICKS ~ YEAR + offset(log(HEIGHT)) + (1 | LOCATION)",
        "grouseticks",
        {"family": "poisson"},
    ),
    "oats_missing": ("lmer", "yield ~ N * Variety + (1 | Block/Variety)", "oats_missing", {}),
}
DAYS = {"Days": [0, 3, 6, 9]}
N_AT = {"N": ["0.0cwt", "0.6cwt"], "Variety": ["Marvellous", "Victory"]}
NITRO = {"nitro": [0, 0.2, 0.4, 0.6]}
SATT = {"df": "satterthwaite"}
EMMEANS = {
    "oats_N_by_variety_kr": ("oats_N", "~ N | Variety", {}),
    "oats_N_by_variety_satt": ("oats_N", "~ N | Variety", SATT),
    "oats_N_kr": ("oats_N", "N", {}),
    "oats_N_satt": ("oats_N", "N", SATT),
    "oats_N_asymptotic": ("oats_N", "N", {"df": "asymptotic"}),
    "oats_variety_kr": ("oats_N", "Variety", {}),
    "oats_N_variety_kr": ("oats_N", "~ N * Variety", {}),
    "oats_N_at_kr": ("oats_N", "~ N | Variety", {"at": N_AT}),
    "oats_nitro_variety_kr": ("oats_nitro", "Variety", {}),
    "oats_nitro_variety_satt": ("oats_nitro", "Variety", SATT),
    "oats_nitro_at_kr": ("oats_nitro", "~ nitro | Variety", {"at": NITRO}),
    "oats_nitro_at_satt": ("oats_nitro", "~ nitro | Variety", {"at": NITRO, **SATT}),
    "oats_nitro_only_kr": ("oats_nitro", "nitro", {"at": {"nitro": [0, 0.3, 0.6]}}),
    "sleep_days_kr": ("sleep_slope", "Days", {"at": DAYS}),
    "sleep_days_satt": ("sleep_slope", "Days", {"at": DAYS, **SATT}),
    "sleep_mean_kr": ("sleep_slope", "Days", {}),
    "sleep_log_link_kr": ("sleep_log", "Days", {"at": DAYS}),
    "sleep_log_response_kr": ("sleep_log", "Days", {"at": DAYS, "type": "response"}),
    "sleep_log_regrid_kr": ("sleep_log", "Days", {"at": DAYS, "regrid": "response"}),
    "cbpp_link": ("cbpp", "period", {}),
    "cbpp_response": ("cbpp", "period", {"type": "response"}),
    "cbpp_regrid": ("cbpp", "period", {"regrid": "response"}),
    "grouse_year_link": ("grouse", "YEAR", {}),
    "grouse_year_response": ("grouse", "YEAR", {"type": "response"}),
    "grouse_height_by_year": ("grouse", "~ cHEIGHT | YEAR", {"at": {"cHEIGHT": [-20, 0, 20]}, "type": "response"}),
    "grouse_year_regrid": ("grouse", "YEAR", {"regrid": "response"}),
    "sleep_unbal_days_kr": ("sleep_unbal", "Days", {"at": {"Days": [0, 4.5, 9]}}),
    "sleep_unbal_days_satt": ("sleep_unbal", "Days", {"at": {"Days": [0, 4.5, 9]}, **SATT}),
    "sleep_unbal_ml_days_kr": ("sleep_unbal_ml", "Days", {"at": {"Days": [0, 9]}}),
    "oats_unbal_N_kr": ("oats_unbal", "N", {}),
    "oats_unbal_N_by_variety_kr": ("oats_unbal", "~ N | Variety", {}),
    "oats_unbal_N_variety_kr": ("oats_unbal", "~ N * Variety", {}),
    "oats_unbal_variety_satt": ("oats_unbal", "Variety", SATT),
    "oats_fnitro_kr": ("oats_fnitro", "nitro", {}),
    "grouse_offset_year": ("grouse_offset", "YEAR", {"type": "response"}),
    "oats_missing_N_by_variety_kr": ("oats_missing", "~ N | Variety", {}),
    "oats_missing_variety_kr": ("oats_missing", "Variety", {}),
}
TRENDS = {
    "oats_nitro_trend_kr": ("oats_nitro", "Variety", {"var": "nitro"}),
    "oats_nitro_trend_satt": ("oats_nitro", "Variety", {"var": "nitro", **SATT}),
    "sleep_days_trend_kr": ("sleep_slope", "1", {"var": "Days"}),
}


@cache
def reference() -> dict:
    return json.loads((REF / "emmeans_reference.json").read_text())


def contrast_cases() -> dict[str, tuple[str, str, dict]]:
    """contrast id -> (emmeans or emtrends id, method, keywords: adjust, by), read from the stored R calls."""
    import re

    out = {}
    ref = reference()
    for section in ("contrasts", "emtrends"):
        for cid, rec in ref[section].items():
            m = re.match(r'contrast\((\w+), method = "([\w.]+)"((?:, \w+ = "[\w.]+")*)\)', rec["call"])
            if m:
                kw = dict(re.findall(r', (\w+) = "([\w.]+)"', m.group(3)))
                out[cid] = (m.group(1), m.group(2), kw)
    return out


@cache
def data(name: str) -> pd.DataFrame:
    if name == "oats":
        return pd.read_csv(REF / "data" / "oats.csv")
    if name == "oats_missing":  # an empty cell: N = 0.6cwt, Variety = Victory
        oats = data("oats")
        return oats[~((oats["N"] == "0.6cwt") & (oats["Variety"] == "Victory"))].reset_index(drop=True)
    if name == "oats_unbal":
        return pd.read_csv(REF / "data" / "oats_unbalanced.csv")
    if name == "sleep_unbal":
        return pd.read_csv(REF / "data" / "sleepstudy_unbalanced.csv").astype({"Subject": "category"})
    return hb.datasets.load(name)


@cache
def fit(fit_id: str):
    kind, formula, dname, kw = FITS[fit_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "lmer":
            return hb.lmer(formula, data(dname), **kw)
        return hb.glmer(formula, data(dname), **kw)


def emm(case_id: str):
    if case_id in EMMEANS:
        fid, specs, kw = EMMEANS[case_id]
        return hb.emmeans(fit(fid), specs, **kw)
    fid, specs, kw = TRENDS[case_id]
    return hb.emtrends(fit(fid), specs, **kw)


def table_of(rec: dict) -> pd.DataFrame:
    return pd.DataFrame(rec["table"])


def as_float(col) -> np.ndarray:
    return np.array([np.inf if v is None else v for v in col], dtype=float)
