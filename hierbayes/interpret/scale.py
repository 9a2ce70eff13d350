"""The scales a fit's predictions live on: the link, the response, and a transformed response.

A GLMM predicts on its family's link scale; ``type="response"`` maps through
the inverse link (a probability for binomial data, a rate for Poisson
counts). A linear model of a transformed response (``log(Reaction) ~ ...``)
is on the transformation's scale, and emmeans (and hierbayes) back-transform
it like a link: R's emmeans detects ``log``, ``log2``, ``log10``, ``log1p``,
``sqrt`` and ``exp`` of the response, with a constant multiplier or offset
(``2*sqrt(y)``, ``log(y + 1)``). An identity link with an untransformed
response has one scale: ``type="response"`` is the link scale.

``Scale`` holds the inverse and its derivative (for the delta method: a family's
:class:`~hierbayes.families.Link`, or a response transformation's) and
the names emmeans prints: ``prob``, ``rate`` or ``response`` for means on the
response scale, ``odds.ratio`` or ``ratio`` for contrasts of log-type scales.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hierbayes.families import Link

if TYPE_CHECKING:
    from hierbayes.fits.base import MixedFit

#: transformations of the response that emmeans recognises (its ``.make.link``), here back-transformed too
RESPONSE_TRANSFORMS = ("log", "log2", "log10", "log1p", "sqrt", "exp")
#: scales whose differences back-transform to ratios (emmeans' ``log.contrast``)
RATIO_SCALES = {"log": "ratio", "log2": "ratio", "log10": "ratio", "logit": "odds.ratio"}
_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_TRANSFORM = re.compile(
    rf"^\s*(?:(?P<mult>{_NUMBER})\s*\*\s*)?(?P<fun>[A-Za-z_][A-Za-z0-9_.]*)\(\s*(?P<arg>[^()]*?)\s*"
    rf"(?:(?P<sign>[-+])\s*(?P<offset>{_NUMBER}))?\s*\)\s*$"
)


@dataclass(frozen=True)
class Scale:
    """A link or response transformation: ``eta = mult * g(mu + offset)``, so ``mu = g^-1(eta / mult) - offset``.

    Attributes
    ----------
    name
        emmeans' name of the transformation (``"logit"``, ``"log"``,
        ``"identity"``, ...).
    response_label
        The column name of back-transformed means (``"prob"``, ``"rate"``, ``"response"``).
    kind
        ``"link"`` (a GLMM's family link) or ``"response"`` (a transformed response of a linear model).
    mult, offset
        Constants of the transformation (1 and 0 for a plain function).
    link
        The family's link (``kind="link"``): its inverse and derivative are the ones the fit uses.
    """

    name: str
    response_label: str = "response"
    kind: str = "link"
    mult: float = 1.0
    offset: float = 0.0
    link: Link | None = field(default=None, repr=False, compare=False)

    @property
    def is_identity(self) -> bool:
        return self.name == "identity"

    @property
    def ratio_label(self) -> str | None:
        """``"odds.ratio"``/``"ratio"`` when back-transformed differences are ratios, else None."""
        return RATIO_SCALES.get(self.name)

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        """The response-scale value of ``eta``."""
        u = np.asarray(eta, dtype=float) / self.mult
        inverse = self.link.inverse if self.link is not None else _INVERSE[self.name]
        return inverse(u) - self.offset

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """d inverse / d eta."""
        u = np.asarray(eta, dtype=float) / self.mult
        deriv = self.link.mu_eta if self.link is not None else _DERIV[self.name]
        return deriv(u) / self.mult


def _sqrt_inv(u):
    return np.maximum(u, 0.0) ** 2


#: inverses and derivatives of the response transformations (a family's link brings its own, hierbayes.families)
_INVERSE = {
    "identity": lambda u: u,
    "log": np.exp,
    "log2": lambda u: np.exp2(u),
    "log10": lambda u: np.power(10.0, u),
    "log1p": np.expm1,
    "sqrt": _sqrt_inv,
    "exp": np.log,
}
_DERIV = {
    "identity": np.ones_like,
    "log": np.exp,
    "log2": lambda u: np.exp2(u) * np.log(2.0),
    "log10": lambda u: np.power(10.0, u) * np.log(10.0),
    "log1p": np.exp,
    "sqrt": lambda u: 2.0 * np.maximum(u, 0.0),
    "exp": lambda u: 1.0 / u,
}

IDENTITY = Scale("identity")


def family_of(fit: MixedFit):
    """The fit's response family (``gaussian``, ``binomial``, ...) with its link."""
    return fit.model.family


def response_transform(response: str) -> Scale | None:
    """The transformation of a response expression emmeans would detect, or None.

    Examples
    --------
    >>> response_transform("log(Reaction)")
    Scale(name='log', response_label='response', kind='response', mult=1.0, offset=0.0)
    >>> response_transform("log(y + 1)").offset
    1.0
    >>> response_transform("Reaction") is None
    True
    """
    m = _TRANSFORM.match(response or "")
    if not m or m.group("fun") not in RESPONSE_TRANSFORMS or not m.group("arg"):
        return None
    mult = float(m.group("mult")) if m.group("mult") else 1.0
    offset = 0.0
    if m.group("offset"):
        offset = float(m.group("offset")) * (1.0 if m.group("sign") == "+" else -1.0)
    # eta = mult * g(y + c): the mean on the response scale is g^-1(eta / mult) - c
    return Scale(m.group("fun"), "response", "response", mult, offset)


def fit_scale(fit: MixedFit) -> Scale:
    """The scale of the fit's linear predictor (emmeans' ``tran``): the family's link, or the response's transform.

    A mean is labelled as the family says (``prob`` for binomial and Bernoulli, ``rate`` for Poisson,
    ``response`` for others).
    """
    fam = family_of(fit)
    link = fam.link.name
    if link != "identity":
        return Scale(link, fam.mean_label, "link", link=fam.link)
    tran = response_transform(fit.design.response_name)
    return tran if tran is not None else IDENTITY
