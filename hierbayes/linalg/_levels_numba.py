"""Compiled loops of :mod:`hierbayes.linalg.levels` (Numba; imported on first use, cached on disk)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def schur_update(M, indptr, rows, values, T, LdT, SWD):  # pragma: no cover - compiled
    """M[i, j] -= ((S T)(S T)')[i, j] for i <= j and SWD += (S T) Ld', level by level (see levels.schur_update)."""
    nl = len(indptr) - 1
    k = values.shape[1]
    nc = LdT.shape[1]
    mmax = 0
    for lev in range(nl):
        mmax = max(mmax, indptr[lev + 1] - indptr[lev])
    qr = SWD.shape[0]
    # the upper triangle is accumulated packed (row i from base[i] + i): half the memory of M, so the
    # scattered updates stay in cache; it is subtracted from M at the end
    base = np.empty(qr, dtype=np.int64)
    for i in range(qr):
        base[i] = i * qr - i * (i + 1) // 2
    U = np.zeros(qr * (qr + 1) // 2)
    lv = np.empty((mmax, k))
    for lev in range(nl):
        s, e = indptr[lev], indptr[lev + 1]
        for p in range(s, e):  # lv = S_l T_l, one row per entry
            for b in range(k):
                acc = 0.0
                for a in range(k):
                    acc += values[p, a] * T[lev, a, b]
                lv[p - s, b] = acc
        if k == 1:
            for p in range(s, e):
                bi = base[rows[p]]
                vp = lv[p - s, 0]
                for q in range(p, e):
                    U[bi + rows[q]] += vp * lv[q - s, 0]
        elif k == 2:
            for p in range(s, e):
                bi = base[rows[p]]
                v0, v1 = lv[p - s, 0], lv[p - s, 1]
                for q in range(p, e):
                    U[bi + rows[q]] += v0 * lv[q - s, 0] + v1 * lv[q - s, 1]
        else:
            for p in range(s, e):
                bi = base[rows[p]]
                for q in range(p, e):
                    acc = 0.0
                    for b in range(k):
                        acc += lv[p - s, b] * lv[q - s, b]
                    U[bi + rows[q]] += acc
        for p in range(s, e):  # SWD[i, c] += (S_l T_l)[i] . Ld_l[c]
            i = rows[p]
            for c in range(nc):
                acc = 0.0
                for b in range(k):
                    acc += lv[p - s, b] * LdT[lev, c, b]
                SWD[i, c] += acc
    for i in range(qr):
        for j in range(i, qr):
            M[i, j] -= U[base[i] + j]


@numba.njit(cache=True, nogil=True)
def level_quadratic(Q, indptr, rows, values, T):  # pragma: no cover - compiled
    """out[l] = (S_l T_l)' Q[R_l, R_l] (S_l T_l) (see levels.level_quadratic)."""
    nl = len(indptr) - 1
    k = values.shape[1]
    mmax = 0
    for lev in range(nl):
        mmax = max(mmax, indptr[lev + 1] - indptr[lev])
    lv = np.empty((mmax, k))
    qv = np.empty((mmax, k))
    out = np.zeros((nl, k, k))
    for lev in range(nl):
        s, e = indptr[lev], indptr[lev + 1]
        m = e - s
        for p in range(m):  # lv = S_l T_l
            for b in range(k):
                acc = 0.0
                for a in range(k):
                    acc += values[s + p, a] * T[lev, a, b]
                lv[p, b] = acc
        for p in range(m):  # qv = Q[R_l, R_l] lv
            rp = rows[s + p]
            for b in range(k):
                qv[p, b] = 0.0
            for q in range(m):
                x = Q[rp, rows[s + q]]
                for b in range(k):
                    qv[p, b] += x * lv[q, b]
        for a in range(k):
            for b in range(k):
                acc = 0.0
                for p in range(m):
                    acc += lv[p, a] * qv[p, b]
                out[lev, a, b] = acc
    return out
