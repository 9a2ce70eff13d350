"""Compiled loops of :mod:`hierbayes.linalg.weighted` (Numba; imported on first use, cached on disk)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def weighted_sums(codes1, Z1, Xy, w, rest_cols, rest_z, nl1, qr):  # pragma: no cover - compiled
    """All weighted cross-products of [Z X y] in one pass over the rows (see weighted.WeightedPattern.sums)."""
    n, k1 = Z1.shape
    m = Xy.shape[1]
    ne = rest_cols.shape[0]
    q1 = nl1 * k1
    A11 = np.zeros((nl1, k1, k1))
    D = np.zeros((nl1, k1, m))
    XX = np.zeros((m, m))
    RR = np.zeros((qr, qr))
    S = np.zeros((qr, q1))
    RX = np.zeros((qr, m))
    for i in range(n):
        wi = w[i]
        if wi == 0.0:
            continue
        lev = codes1[i]
        for a in range(k1):
            za = wi * Z1[i, a]
            for b in range(k1):
                A11[lev, a, b] += za * Z1[i, b]
            for c in range(m):
                D[lev, a, c] += za * Xy[i, c]
        for c in range(m):
            xc = wi * Xy[i, c]
            for d in range(c, m):
                XX[c, d] += xc * Xy[i, d]
        for e in range(ne):
            ce = rest_cols[e, i]
            ze = wi * rest_z[e, i]
            for f in range(ne):
                RR[ce, rest_cols[f, i]] += ze * rest_z[f, i]
            for a in range(k1):
                S[ce, lev * k1 + a] += ze * Z1[i, a]
            for c in range(m):
                RX[ce, c] += ze * Xy[i, c]
    for c in range(m):
        for d in range(c):
            XX[c, d] = XX[d, c]
    return A11, D, XX, RR, S, RX


@numba.njit(cache=True, nogil=True)
def first_block(A11, lam, D, S):  # pragma: no cover - compiled
    """Per-level factors of ``lam' A_l lam + I`` and the first block's part of L[2,1].

    Returns ``(ok, Linv, logdet, Ld, Ls)``: ``Linv`` the inverses of the
    per-level lower factors L_l, ``logdet`` = log|L11|^2, ``Ld`` (m, q1) and
    ``Ls`` (qr, q1) the rows of ``[S; D'] T`` with ``T_l = lam L_l^{-T}``.
    ``ok`` is False when a level's matrix is not positive definite.
    """
    nl1, k = A11.shape[0], A11.shape[1]
    m = D.shape[2]
    qr = S.shape[0]
    Linv = np.zeros((nl1, k, k))
    Ld = np.empty((m, nl1 * k))
    Ls = np.empty((qr, nl1 * k))
    M = np.empty((k, k))
    L = np.empty((k, k))
    T = np.empty((k, k))
    tmp = np.empty((k, k))
    logdet = 0.0
    for lev in range(nl1):
        # M = lam' A lam + I
        for a in range(k):
            for b in range(k):
                acc = 0.0
                for c in range(k):
                    acc += A11[lev, a, c] * lam[c, b]
                tmp[a, b] = acc
        for a in range(k):
            for b in range(k):
                acc = 0.0
                for c in range(k):
                    acc += lam[c, a] * tmp[c, b]
                M[a, b] = acc + (1.0 if a == b else 0.0)
        # Cholesky M = L L'
        for j in range(k):
            s = M[j, j]
            for c in range(j):
                s -= L[j, c] * L[j, c]
            if not s > 0.0:
                return False, Linv, np.nan, Ld, Ls
            L[j, j] = np.sqrt(s)
            for i in range(j + 1, k):
                s = M[i, j]
                for c in range(j):
                    s -= L[i, c] * L[j, c]
                L[i, j] = s / L[j, j]
            for i in range(j):
                L[i, j] = 0.0
            logdet += 2.0 * np.log(L[j, j])
        # Linv: forward substitution column by column
        for j in range(k):
            for i in range(k):
                if i < j:
                    Linv[lev, i, j] = 0.0
                    continue
                s = 1.0 if i == j else 0.0
                for c in range(j, i):
                    s -= L[i, c] * Linv[lev, c, j]
                Linv[lev, i, j] = s / L[i, i]
        # T = lam Linv'
        for a in range(k):
            for b in range(k):
                acc = 0.0
                for c in range(k):
                    acc += lam[a, c] * Linv[lev, b, c]
                T[a, b] = acc
        base = lev * k
        for c in range(m):
            for b in range(k):
                acc = 0.0
                for a in range(k):
                    acc += D[lev, a, c] * T[a, b]
                Ld[c, base + b] = acc
        for r in range(qr):
            for b in range(k):
                acc = 0.0
                for a in range(k):
                    acc += S[r, base + a] * T[a, b]
                Ls[r, base + b] = acc
    return True, Linv, logdet, Ld, Ls


@numba.njit(cache=True, nogil=True)
def first_solve(Linv, rhs):  # pragma: no cover - compiled
    """Per level ``L_l^{-T} rhs_l`` (rhs: nl1 * k), as (nl1, k)."""
    nl1, k = Linv.shape[0], Linv.shape[1]
    out = np.empty((nl1, k))
    for lev in range(nl1):
        for i in range(k):
            acc = 0.0
            for j in range(k):
                acc += Linv[lev, j, i] * rhs[lev * k + j]
            out[lev, i] = acc
    return out


@numba.njit(cache=True, nogil=True)
def _left_lambda(A, cbase, ca, ck, cblk, lams):  # pragma: no cover - compiled
    """``Lambda_r' A`` on the rows of A (one row per rest column; see weighted_finish)."""
    out = np.empty_like(A)
    for c in range(A.shape[0]):
        base, a, k, blk = cbase[c], ca[c], ck[c], cblk[c]
        for j in range(A.shape[1]):
            acc = 0.0
            for b in range(k):
                acc += lams[blk, b, a] * A[base + b, j]
            out[c, j] = acc
    return out


@numba.njit(cache=True, nogil=True)
def weighted_finish(XX, RR, RX, Ls, Ld, cbase, ca, ck, cblk, lams):  # pragma: no cover - compiled
    """The dense rest of the weighted system: factor ``M - L21 L21'`` and solve.

    ``M = [Lambda_r' RR Lambda_r + I, Lambda_r' RX; ., XX]``, ``L21 = [Lambda_r' Ls; Ld]``;
    rest column c has its block's factor ``lams[cblk[c]]`` (k = ``ck[c]``),
    its level's first column ``cbase[c]`` and its term ``ca[c]``. Returns
    ``(status, logdet_rest, x, RXf, rhs)``: status 0 for success, 1 when a
    pivot of [Z X] fails; ``x`` = (u_rest, beta), ``RXf`` = R_X', ``rhs`` the
    first block's right-hand side (``L11^{-T}`` still to apply). When only the
    working response's pivot fails ([Z X] fit it exactly), its row is the
    forward substitution and its diagonal zero (as LAPACK's info = r).
    """
    qr = RR.shape[0]
    m = XX.shape[0]
    r = qr + m
    mm = r - 1
    q1 = Ld.shape[1]
    L21 = np.empty((r, q1))
    if qr:
        L21[:qr] = _left_lambda(Ls, cbase, ca, ck, cblk, lams)
    L21[qr:] = Ld
    M = np.empty((r, r))
    if qr:
        T1 = _left_lambda(RR, cbase, ca, ck, cblk, lams)
        T2 = _left_lambda(np.ascontiguousarray(T1.T), cbase, ca, ck, cblk, lams)
        for i in range(qr):
            for j in range(qr):
                M[i, j] = T2[j, i]
            M[i, i] += 1.0
        B = _left_lambda(RX, cbase, ca, ck, cblk, lams)
        for i in range(qr):
            for j in range(m):
                M[i, qr + j] = B[i, j]
                M[qr + j, i] = B[i, j]
    M[qr:, qr:] = XX
    M -= np.dot(L21, L21.T)
    # Cholesky, row by row (lower)
    L = np.zeros((r, r))
    for i in range(r):
        for j in range(i):
            s = M[i, j]
            for c in range(j):
                s -= L[i, c] * L[j, c]
            L[i, j] = s / L[j, j]
        s = M[i, i]
        for c in range(i):
            s -= L[i, c] * L[i, c]
        if s > 0.0:
            L[i, i] = np.sqrt(s)
        elif i == mm and not np.isnan(s):
            L[i, i] = 0.0
        else:
            return 1, np.nan, np.empty(0), np.empty((0, 0)), np.empty(0)
    # x = L[:mm, :mm]^{-T} L[mm, :mm]
    x = L[mm, :mm].copy()
    for i in range(mm - 1, -1, -1):
        s = x[i]
        for c in range(i + 1, mm):
            s -= L[c, i] * x[c]
        x[i] = s / L[i, i]
    rhs = L21[mm].copy()
    for i in range(mm):
        xi = x[i]
        for j in range(q1):
            rhs[j] -= L21[i, j] * xi
    logdet = 0.0
    for i in range(qr):
        logdet += 2.0 * np.log(L[i, i])
    return 0, logdet, x, L[qr:mm, qr:mm].copy(), rhs
