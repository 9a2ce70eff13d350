## =============================================================================
## make_structures_profile.R -- profile-likelihood interval references for fits
## with a residual structure (issue 20: confint(method = "profile"))
## =============================================================================
##
## nlme has no profile(): its intervals() are Wald intervals on a transformed
## scale. The references here are the exact 95% profile-likelihood limits of
## nlme's own ML log-likelihood: for a parameter held at a value v, every
## other parameter is re-optimised by nlme::lme (tight lmeControl), and
## uniroot() finds the two values where
##     2 * (logLik(ML fit) - logLik(fit with the parameter held at v)) = qchisq(0.95, 1).
## Held by nlme itself:
##   fixed effect j   response y - v * x_j, column j dropped from X (lme4's
##                    profile of a fixed effect);
##   Phi              corAR1(v, ..., fixed = TRUE), corCAR1(v, ..., fixed = TRUE);
##   varIdent ratio   varIdent(form, fixed = c(level = v)).
## The SDs of the random effects cannot be held by lme, and lme with
## lmeControl(sigma = v) reports a log-likelihood that is not the ML one at
## sigma = v (logLik at v = sigma-hat differs from the ML fit's), so sigma and
## the SDs are checked by re-optimising hierbayes's own deviance at their limits
## (tests/structures/test_profile.py).
##
## Writes tests/reference/structures_profile_reference.json.
## Run from the repository root:  Rscript tests/reference/make_structures_profile.R
## =============================================================================

suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})
if (!file.exists("tests/reference/data/ovary.csv"))
  stop("run from the repository root: Rscript tests/reference/make_structures_profile.R")

OUT <- "tests/reference/structures_profile_reference.json"
TIGHT <- lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100,
                    tolerance = 1e-12, rel.tol = 1e-15, x.tol = 1e-13, returnObject = TRUE)
CUT <- qchisq(0.95, 1)

read_data <- function(file, factors) {
  d <- read.csv(file.path("tests/reference/data", file))
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}

## One case: the data, fixed/random formulas, a function making the structure
## (value = NULL: estimated; otherwise held at value), the structure's kind.
profile_case <- function(d, fixed, random, corr = NULL, weights = NULL, held, wald_se) {
  fit_at <- function(data = d, fixed_f = fixed, corr_v = NULL, w_v = NULL) {
    args <- list(fixed = fixed_f, data = data, random = random, method = "ML", control = TIGHT)
    if (!is.null(corr)) args$correlation <- corr(corr_v)
    if (!is.null(weights)) args$weights <- weights(w_v)
    do.call(lme, args)
  }
  ml <- fit_at()
  ll0 <- as.numeric(logLik(ml))
  X <- model.matrix(fixed, d)
  y <- d[[all.vars(fixed)[1]]]
  devdiff <- function(par, v) {
    fit <- switch(par$kind,
      beta = {
        dd <- d
        dd$.y <- y - v * X[, par$column]
        dd$.X <- X[, -par$column, drop = FALSE]
        fit_at(data = dd, fixed_f = .y ~ 0 + .X)
      },
      corr = fit_at(corr_v = v),
      weights = fit_at(w_v = v))
    2 * (ll0 - as.numeric(logLik(fit)))
  }
  out <- list(loglik_ml = ll0)
  for (name in names(held)) {
    par <- held[[name]]
    est <- par$estimate(ml)
    step <- par$step
    limits <- c()
    for (dir in c(-1, 1)) {
      a <- est; b <- est + dir * step
      while (devdiff(par, b) < CUT) {
        a <- b; b <- est + dir * (abs(b - est) * 2)
        if (!is.null(par$lower) && b <= par$lower) b <- (a + par$lower) / 2
        if (!is.null(par$upper) && b >= par$upper) b <- (a + par$upper) / 2
      }
      r <- uniroot(function(v) devdiff(par, v) - CUT, sort(c(a, b)), tol = 1e-10)
      limits <- c(limits, r$root)
    }
    out[[name]] <- list(estimate = est, lower = limits[1], upper = limits[2],
                        check_at_estimate = devdiff(par, est))
  }
  out
}

beta <- function(j, name, step) list(kind = "beta", column = j, step = step,
                                     estimate = function(m) unname(fixef(m)[name]))

cases <- list()

## Ovary, AR(1) within Mare (Pinheiro & Bates 5.3.4)
ov <- read_data("ovary.csv", "Mare")
cases$ovary_ar1 <- profile_case(
  ov, follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), ~ 1 | Mare,
  corr = function(v) if (is.null(v)) corAR1(form = ~ 1 | Mare) else corAR1(v, form = ~ 1 | Mare, fixed = TRUE),
  held = list(
    Phi = list(kind = "corr", step = 0.05, lower = -1, upper = 1,
               estimate = function(m) unname(coef(m$modelStruct$corStruct, unconstrained = FALSE))),
    "(Intercept)" = beta(1, "(Intercept)", 0.5),
    "np.sin(2 * np.pi * Time)" = beta(2, "sin(2 * pi * Time)", 0.3),
    "np.cos(2 * np.pi * Time)" = beta(3, "cos(2 * pi * Time)", 0.3)))

## Orthodont, one residual SD per Sex (P&B 5.2.1)
ort <- read_data("orthodont.csv", c("Subject", "Sex"))
cases$orthodont_varident <- profile_case(
  ort, distance ~ age * Sex, ~ 1 | Subject,
  weights = function(v) if (is.null(v)) varIdent(form = ~ 1 | Sex) else varIdent(form = ~ 1 | Sex, fixed = c(Male = v)),
  held = list(
    Male = list(kind = "weights", step = 0.1, lower = 0,
                estimate = function(m) unname(coef(m$modelStruct$varStruct, unconstrained = FALSE))),
    age = beta(2, "age", 0.03),
    "age:SexMale" = beta(4, "age:SexMale", 0.03)))

## BodyWeight, continuous-time AR(1) within Rat (P&B 5.3.4)
bw <- read_data("bodyweight.csv", c("Rat", "Diet"))
cases$bodyweight_car1 <- profile_case(
  bw, weight ~ Time * Diet, ~ Time | Rat,
  corr = function(v) if (is.null(v)) corCAR1(form = ~ Time | Rat) else corCAR1(v, form = ~ Time | Rat, fixed = TRUE),
  held = list(
    Phi = list(kind = "corr", step = 0.05, lower = 0, upper = 1,
               estimate = function(m) unname(coef(m$modelStruct$corStruct, unconstrained = FALSE))),
    Time = beta(2, "Time", 0.05)))

meta <- list(
  R_version = R.version.string,
  packages = list(nlme = as.character(packageVersion("nlme")), jsonlite = as.character(packageVersion("jsonlite"))),
  date = format(Sys.time(), tz = "UTC", usetz = TRUE),
  command = "Rscript tests/reference/make_structures_profile.R",
  file = basename(OUT),
  nlme_control = "lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100, tolerance = 1e-12, rel.tol = 1e-15, x.tol = 1e-13, returnObject = TRUE)",
  method = "ML profile limits: uniroot(tol = 1e-10) of 2 * (logLik(ML) - logLik(held)) - qchisq(0.95, 1), other parameters re-optimised by lme",
  level = 0.95)
writeLines(toJSON(list(meta = meta, cases = cases), auto_unbox = TRUE, digits = NA, pretty = TRUE), OUT)
cat("wrote", OUT, "\n")
