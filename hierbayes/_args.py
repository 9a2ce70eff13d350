"""Unknown keyword arguments: one ArgumentError that lists the valid names (and the likely one)."""

from __future__ import annotations

import difflib

from hierbayes.errors import ArgumentError

#: lme4's dotted spellings and the names hierbayes gives them.
R_SPELLINGS = {"na.action": "na_action", "allow.new.levels": "allow_new_levels", "re.form": "re_form",
               "use.u": "use_u", "newparams": "newparams"}  # fmt: skip


def check_unknown(unknown: dict, where: str, valid: list[str], hint: str | None = None) -> None:
    """Raise an ArgumentError naming the unknown keywords of ``where``, a likely meant name, and the valid ones.

    Examples
    --------
    >>> check_unknown({"allow.new.levels": True}, "fit.predict", ["newdata", "re_form", "allow_new_levels"])
    Traceback (most recent call last):
    ...
    hierbayes.errors.ArgumentError: fit.predict() got unknown keyword argument(s) 'allow.new.levels' \
('allow.new.levels': did you mean 'allow_new_levels'?); valid: newdata, re_form, allow_new_levels
    """
    if not unknown:
        return
    names = list(unknown)
    hints = [hint] if hint else []
    for name in names:
        if hint and name in ("family", "link"):
            continue
        r_name = R_SPELLINGS.get(name)
        same_case = [v for v in valid if v.lower() == name.lower().replace(".", "_")]
        close = [r_name] if r_name in valid else same_case or difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        if close:
            hints.append(f"'{name}': did you mean '{close[0]}'?")
    raise ArgumentError(
        f"{where}() got unknown keyword argument(s) {', '.join(map(repr, names))}"
        + (f" ({'; '.join(hints)})" if hints else "")
        + f"; valid: {', '.join(valid)}"
    )
