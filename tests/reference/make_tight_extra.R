## =============================================================================
## make_tight_extra.R -- reference numbers for tests that had none or loose ones
## =============================================================================
##
## Writes tests/reference/tight_extra_reference.json:
##   start       lme4's starting theta (mkLmerDevfun: environment(devfun)$pp$theta)
##               and the number of deviance evaluations of the default lmer fit
##               (m@optinfo$feval), for tests/reml/test_start.py
##   coef_cbpp   summary(m)$coefficients of the tightly converged cbpp glmer
##               (tolPwrss = 1e-12, BOBYQA rhoend = 1e-10 in both stages, as
##               make_glmm_extra.R): estimates, SEs, z values and p-values
##   links       tightly converged glmer fits with the links no other reference
##               covers: binomial cloglog (cbpp), Poisson sqrt (grouseticks and
##               sim_poisson_crossed); -2 logLik, theta, beta, vcov, ranef with
##               condsd, fitted values
##
## Run from the repository root:  Rscript tests/reference/make_tight_extra.R
## =============================================================================

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
if (!file.exists("hierbayes/datasets/data/cbpp.csv"))
  stop("run from the repository root: Rscript tests/reference/make_tight_extra.R")

arr <- function(x) I(unname(as.vector(x)))
named <- function(x) stats::setNames(as.list(unname(as.vector(x))), names(x))
mat_rows <- function(m) lapply(seq_len(nrow(m)), function(i) arr(as.matrix(m)[i, ]))
read_factors <- function(path, factors) {
  d <- read.csv(path, stringsAsFactors = FALSE)
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}
penicillin <- read_factors("hierbayes/datasets/data/penicillin.csv", c("plate", "sample"))
sleepstudy <- read_factors("hierbayes/datasets/data/sleepstudy.csv", "Subject")
cbpp <- read_factors("hierbayes/datasets/data/cbpp.csv", c("herd", "period"))
grouseticks <- read_factors("hierbayes/datasets/data/grouseticks.csv", c("INDEX", "BROOD", "YEAR", "LOCATION"))
sim_poisson_crossed <- read_factors("tests/reference/data/sim_poisson_crossed.csv", c("site", "year"))

TIGHT <- glmerControl(tolPwrss = 1e-12, optimizer = c("bobyqa", "bobyqa"),
                      optCtrl = list(rhoend = 1e-10, maxfun = 1e5))

## --- lme4's start --------------------------------------------------------------
start_case <- function(f, d) {
  df <- lmer(f, data = d, devFunOnly = TRUE)
  m <- lmer(f, data = d)
  list(formula = deparse(f), theta0 = arr(environment(df)$pp$theta), feval = m@optinfo$feval,
       theta = arr(getME(m, "theta")))
}
start <- list(
  penicillin = start_case(diameter ~ 1 + (1 | plate) + (1 | sample), penicillin),
  sleep_slopes = start_case(Reaction ~ Days + (Days | Subject), sleepstudy),
  sleep_zcp = start_case(Reaction ~ Days + (Days || Subject), sleepstudy)
)

## --- cbpp coefficient table at the tight optimum ---------------------------------
m_cbpp <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial,
                control = TIGHT)
cf <- summary(m_cbpp)$coefficients
coef_cbpp <- list(term = arr(rownames(cf)), estimate = arr(cf[, 1]), se = arr(cf[, 2]),
                  z = arr(cf[, 3]), p = arr(cf[, 4]), minus2logLik = -2 * as.numeric(logLik(m_cbpp)))

## --- the other links -------------------------------------------------------------
LINKS <- list(
  cbpp_cloglog = list(f = cbind(incidence, size - incidence) ~ period + (1 | herd), d = "cbpp",
                      fam = binomial("cloglog")),
  grouse_sqrt = list(f = TICKS ~ YEAR + cHEIGHT + (1 | BROOD), d = "grouseticks", fam = poisson("sqrt")),
  sim_poisson_sqrt = list(f = count ~ x + (1 | site) + (1 | year), d = "sim_poisson_crossed",
                          fam = poisson("sqrt"))
)
record <- function(cs) {
  m <- glmer(cs$f, data = get(cs$d), family = cs$fam, control = TIGHT)
  re <- ranef(m, condVar = TRUE)
  list(formula = deparse(cs$f), data = cs$d, family = cs$fam$family, link = cs$fam$link,
       minus2logLik = -2 * as.numeric(logLik(m)), theta = named(getME(m, "theta")), beta = named(fixef(m)),
       vcov = mat_rows(as.matrix(vcov(m))),
       ranef = lapply(re, function(r) list(values = mat_rows(as.matrix(r)),
                                           condsd = mat_rows(t(apply(attr(r, "postVar"), 3,
                                                                     function(v) sqrt(diag(as.matrix(v)))))))),
       fitted = arr(fitted(m)),
       conv_messages = arr(if (is.null(m@optinfo$conv$lme4$messages)) character(0) else m@optinfo$conv$lme4$messages))
}
links <- lapply(LINKS, record)

res <- list(
  meta = list(R_version = R.version.string,
              packages = list(lme4 = as.character(packageVersion("lme4")),
                              Matrix = as.character(packageVersion("Matrix")),
                              jsonlite = as.character(packageVersion("jsonlite"))),
              date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
              command = "Rscript tests/reference/make_tight_extra.R",
              control = "glmerControl(tolPwrss = 1e-12, optimizer = c('bobyqa', 'bobyqa'), optCtrl = list(rhoend = 1e-10))",
              file = "tight_extra_reference.json"),
  start = start, coef_cbpp = coef_cbpp, links = links
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE),
           "tests/reference/tight_extra_reference.json")
cat("wrote tests/reference/tight_extra_reference.json\n")
