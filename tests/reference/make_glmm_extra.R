## =============================================================================
## make_glmm_extra.R -- tightly converged lme4::glmer numbers for tests/glmm
## =============================================================================
##
## Why: with its defaults (PIRLS tolerance tolPwrss = 1e-7 on the relative
## change of the penalized deviance, Nelder-Mead in the second stage) glmer's
## devfun is only accurate to about 1e-3 (e.g. cbpp at the fitted c(theta,
## beta): 184.053133 by default, 184.052572 with tolPwrss = 1e-10 or 1e-13),
## so its optimum is off by ~2e-4 in the fixed effects and its
## finite-difference Hessian (hence the SEs) by up to ~5e-3. hierbayes
## converges PIRLS to machine precision; these fits, with tolPwrss = 1e-12 and
## BOBYQA with rhoend = 1e-10 in both stages, are the lme4 numbers it should
## equal to many digits. glmer_reference.json keeps lme4's default output.
##
## Writes tests/reference/glmm_extra_reference.json:
##   cases[id]   tight refit of every glmer_reference.json case (plus cbpp
##               nAGQ = 0): minus2logLik, deviance, theta, beta, vcov,
##               ranef values and condsd, devfun values at fixed c(theta, beta)
##   confint     cbpp Laplace: profile (tight fit) and parametric bootstrap
##               percentile intervals (nsim = 500, seed = 1; Monte Carlo)
##   anova       cbpp: anova(m0, m) of the tight fits
##
## Run from the repository root:  Rscript tests/reference/make_glmm_extra.R
## =============================================================================

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
if (!file.exists("hierbayes/datasets/data/cbpp.csv"))
  stop("run from the repository root: Rscript tests/reference/make_glmm_extra.R")

arr <- function(x) I(unname(as.vector(x)))
named <- function(x) stats::setNames(as.list(unname(as.vector(x))), names(x))
mat_rows <- function(m) lapply(seq_len(nrow(m)), function(i) arr(as.matrix(m)[i, ]))

read_factors <- function(path, factors) {
  d <- read.csv(path, stringsAsFactors = FALSE)
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}
cbpp <- read_factors("hierbayes/datasets/data/cbpp.csv", c("herd", "period"))
grouseticks <- read_factors("hierbayes/datasets/data/grouseticks.csv", c("INDEX", "BROOD", "YEAR", "LOCATION"))
sim_binary <- read_factors("tests/reference/data/sim_binary.csv", "g")
sim_poisson_crossed <- read_factors("tests/reference/data/sim_poisson_crossed.csv", c("site", "year"))

TIGHT <- glmerControl(tolPwrss = 1e-12, optimizer = c("bobyqa", "bobyqa"),
                      optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
TIGHT_NM <- glmerControl(tolPwrss = 1e-12, optimizer = c("bobyqa", "Nelder_Mead"),
                         optCtrl = list(FtolAbs = 1e-14, FtolRel = 1e-15, XtolRel = 1e-12, maxfun = 1e5))

CASES <- list(
  cbpp_laplace = list(f = cbind(incidence, size - incidence) ~ period + (1 | herd), d = "cbpp",
                      fam = binomial("logit"), nAGQ = 1L),
  cbpp_nagq0 = list(f = cbind(incidence, size - incidence) ~ period + (1 | herd), d = "cbpp",
                    fam = binomial("logit"), nAGQ = 0L),
  cbpp_agq = list(f = cbind(incidence, size - incidence) ~ period + (1 | herd), d = "cbpp",
                  fam = binomial("logit"), nAGQ = 25L),
  cbpp_agq5 = list(f = cbind(incidence, size - incidence) ~ period + (1 | herd), d = "cbpp",
                   fam = binomial("logit"), nAGQ = 5L),
  grouse_nested = list(f = TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD), d = "grouseticks",
                       fam = poisson("log"), nAGQ = 1L),
  sim_binary_slope = list(f = y ~ x + (x | g), d = "sim_binary", fam = binomial("logit"), nAGQ = 1L),
  sim_binary_probit = list(f = y ~ x + (1 | g), d = "sim_binary", fam = binomial("probit"), nAGQ = 1L),
  sim_poisson_crossed = list(f = count ~ x + (1 | site) + (1 | year), d = "sim_poisson_crossed",
                             fam = poisson("log"), nAGQ = 1L)
)

fit_case <- function(cs, control = TIGHT, ...) {
  glmer(cs$f, data = get(cs$d), family = cs$fam, nAGQ = cs$nAGQ, control = control, ...)
}

record <- function(id, cs) {
  m <- fit_case(cs)
  m_nm <- if (cs$nAGQ > 0) fit_case(cs, TIGHT_NM) else m
  re <- ranef(m, condVar = TRUE)
  th <- getME(m, "theta"); be <- fixef(m)
  rec <- list(
    formula = deparse(cs$f), data = cs$d, nAGQ = cs$nAGQ,
    family = cs$fam$family, link = cs$fam$link,
    minus2logLik = -2 * as.numeric(logLik(m)),
    minus2logLik_nelder_mead = -2 * as.numeric(logLik(m_nm)),
    deviance = deviance(m),
    theta = named(th), beta = named(be),
    beta_nelder_mead = named(fixef(m_nm)),
    vcov = mat_rows(as.matrix(vcov(m))),
    ranef = lapply(re, function(r) list(values = mat_rows(as.matrix(r)),
                                        condsd = mat_rows(t(apply(attr(r, "postVar"), 3,
                                                                  function(v) sqrt(diag(as.matrix(v)))))))),
    conv_messages = arr(m@optinfo$conv$lme4$messages %||% character(0))
  )
  if (cs$nAGQ > 0) {
    pts <- list(fitted = c(th, be), theta1_beta_hat = c(rep(1, length(th)), be))
    rec$devfun <- lapply(pts, function(p) {
      df <- glmer(cs$f, data = get(cs$d), family = cs$fam, nAGQ = cs$nAGQ, control = TIGHT, devFunOnly = TRUE)
      list(par = arr(p), value = df(p))
    })
  }
  rec
}
`%||%` <- function(a, b) if (is.null(a)) b else a

out <- list()
for (id in names(CASES)) {
  cat("fitting", id, "\n")
  out[[id]] <- suppressWarnings(record(id, CASES[[id]]))
}

m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial,
           control = TIGHT)  # a top-level call: bootMer refits it
m0 <- glmer(cbind(incidence, size - incidence) ~ (1 | herd), data = cbpp, family = binomial, control = TIGHT)
cat("profile\n")
prof <- confint(m, method = "profile", oldNames = TRUE)
cat("bootstrap\n")
boot <- suppressWarnings(confint(m, method = "boot", nsim = 500, seed = 1, oldNames = TRUE))
ci_rows <- function(ci) lapply(seq_len(nrow(ci)), function(i)
  list(term = rownames(ci)[i], lower = ci[i, 1], upper = ci[i, 2]))
av <- anova(m0, m)

res <- list(
  meta = list(R_version = R.version.string,
              packages = list(lme4 = as.character(packageVersion("lme4")),
                              Matrix = as.character(packageVersion("Matrix")),
                              jsonlite = as.character(packageVersion("jsonlite"))),
              date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
              command = "Rscript tests/reference/make_glmm_extra.R",
              control = "glmerControl(tolPwrss = 1e-12, optimizer = c('bobyqa', 'bobyqa'), optCtrl = list(rhoend = 1e-10))",
              file = "glmm_extra_reference.json"),
  cases = out,
  confint = list(profile = ci_rows(prof),
                 boot = list(nsim = 500, seed = 1, type = "perc", rows = ci_rows(boot))),
  anova = list(npar = arr(av$npar), logLik = arr(av$logLik), deviance = arr(av$deviance),
               Chisq = arr(av$Chisq), Df = arr(av$Df), p = arr(av[["Pr(>Chisq)"]]))
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE),
           "tests/reference/glmm_extra_reference.json")
cat("wrote tests/reference/glmm_extra_reference.json\n")
