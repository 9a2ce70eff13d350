## =============================================================================
## make_rcalls.R -- lme4's getME, update and refit on fitted models
## =============================================================================
##
## Reference numbers for tests/fits/test_rcalls.py (fit.getME, fit.update, fit.refit):
##   getME    Z (dims, column sums, the column-sum-weighted row index), Lambda
##            (nonzeros in column-major order), b, Gp, l_i/q_i/p_i/m_i (as dims), cnms,
##            flist levels, n_rtrms for sleepstudy (Days | Subject), (Days || Subject),
##            Penicillin (1 | plate) + (1 | sample) and cbpp's binomial glmer; all fits
##            tightly converged so that Lambda and b are comparable to 1e-6.
##   update   logLik / REML criterion and fixef of update(m, . ~ . - Days),
##            update(m, . ~ . - (Days | Subject) + (1 | Subject), REML = FALSE),
##            update(m, subset = Days > 1), and glmer's update(g, nAGQ = 5).
##   refit    the fit to a new response: lmer on it directly (tight control) and lme4's
##            refit(m, newresp). lme4 1.1-31's refit reports REMLcrit 2000.0939 although its
##            own deviance function gives 1990.3893 at the refit's theta (and the direct fit's
##            optimum is 1990.3887): refit's stored criterion is wrong, its theta and fixef are
##            right; the test compares with the direct fit and records both.
## Run from the repository root:  Rscript tests/reference/make_rcalls.R
## =============================================================================
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
if (!file.exists("hierbayes/datasets/data/sleepstudy.csv"))
  stop("run from the repository root: Rscript tests/reference/make_rcalls.R")
arr <- function(x) I(unname(as.vector(x)))
named <- function(x) stats::setNames(as.list(unname(as.vector(x))), names(x))
TIGHT <- lmerControl(optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_abs = 1e-12, xtol_rel = 1e-12,
                                    maxeval = 1e5))
GTIGHT <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
ss <- read.csv("hierbayes/datasets/data/sleepstudy.csv")
pen <- read.csv("hierbayes/datasets/data/penicillin.csv")
cbpp <- read.csv("hierbayes/datasets/data/cbpp.csv")
cbpp$period <- factor(cbpp$period)

getme <- function(m) {
  Z <- getME(m, "Z")
  L <- getME(m, "Lambda")
  list(Z_dim = arr(dim(Z)), Z_colsums = arr(Matrix::colSums(Z)),
       Z_rowindex = arr(as.vector(Matrix::crossprod(Z, seq_len(nrow(Z))))),
       Lambda_x = arr(as.matrix(L)[as.matrix(L) != 0]), b = arr(getME(m, "b")),
       Gp = arr(getME(m, "Gp")), l_i = arr(getME(m, "l_i")), q_i = arr(getME(m, "q_i")),
       m_i = arr(getME(m, "m_i")), n_rtrms = getME(m, "n_rtrms"), n_rfacs = length(getME(m, "flist")),
       cnms = lapply(getME(m, "cnms"), arr), cnms_names = arr(names(getME(m, "cnms"))),
       flist_levels = lapply(getME(m, "flist"), function(f) arr(levels(f))),
       theta = named(getME(m, "theta")), REML = getME(m, "REML"), N = getME(m, "N"), q = getME(m, "q"))
}
fm1 <- lmer(Reaction ~ Days + (Days | Subject), ss, control = TIGHT)
fm2 <- lmer(Reaction ~ Days + (Days || Subject), ss, control = TIGHT)
fm3 <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen, control = TIGHT)
gm1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, control = GTIGHT)
getme_res <- list(sleepstudy = getme(fm1), sleepstudy_double = getme(fm2), penicillin = getme(fm3),
                  cbpp = getme(gm1))

fit_rec <- function(m) list(formula = paste(deparse(formula(m)), collapse = ""),
                            criterion = if (isREML(m)) REMLcrit(m) else deviance(m),
                            logLik = as.numeric(logLik(m)), beta = named(fixef(m)), theta = named(getME(m, "theta")),
                            nobs = nobs(m))
update_res <- list(
  drop_days = fit_rec(update(fm1, . ~ . - Days)),
  intercept_ml = fit_rec(update(fm1, . ~ . - (Days | Subject) + (1 | Subject), REML = FALSE)),
  subset = fit_rec(update(fm1, subset = Days > 1)),
  glmer_nagq5 = fit_rec(update(gm1, nAGQ = 5))
)
newresp <- ss$Reaction * 2 + ss$Days
ss$newresp <- newresp
direct <- lmer(newresp ~ Days + (Days | Subject), ss, control = TIGHT)
lme4_refit <- refit(fm1, newresp)
devfun <- lmer(newresp ~ Days + (Days | Subject), ss, devFunOnly = TRUE)
refit_res <- list(newresp = arr(newresp), sleepstudy = fit_rec(direct), lme4_refit = fit_rec(lme4_refit),
                  lme4_refit_devfun_at_theta = devfun(getME(lme4_refit, "theta")))

res <- list(
  meta = list(R_version = R.version.string,
              packages = list(lme4 = as.character(packageVersion("lme4")),
                              Matrix = as.character(packageVersion("Matrix")),
                              jsonlite = as.character(packageVersion("jsonlite"))),
              date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
              command = "Rscript tests/reference/make_rcalls.R",
              tight = "lmerControl(optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_abs = 1e-12, xtol_rel = 1e-12)); glmerControl(bobyqa, rhoend = 1e-12)",
              platform = R.version$platform, file = "rcalls_reference.json"),
  getme = getme_res, update = update_res, refit = refit_res)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE),
           "tests/reference/rcalls_reference.json")
cat("wrote tests/reference/rcalls_reference.json\n")
