## =============================================================================
## make_lme4args_reference.R -- lme4's arguments, prior weights and estimation edge cases
## =============================================================================
##
## Reference numbers for issue 15 (tests/fits/test_lme4args.py, tests/reml/test_weights.py,
## tests/glmm/test_edge_cases.py, tests/inference/test_anova_types.py):
##
##   weighted_lmer   lme4's tests/priorWeights.R (simulated data, REML/ML, random
##                   intercepts and slopes; sleepstudy with weights; the n = 40
##                   lme4.0 comparison case), constant weights, zero weights
##                   (lme4 1.1-31 gives an infinite criterion; the reference is the
##                   fit without those rows), priorWeightsModComp.R (anova of w and
##                   10 w for 5 seeds)
##   weighted_glmer  lme4's tests/glmmWeights.R Poisson with weights rep(2, n),
##                   varying Poisson weights, and binomial proportions with weights
##   tight           nlme's Machines ((0 + Machine | Worker), (Machine || Worker)) and
##                   Oxide (1 | Lot/Wafer): lme4's default fit and several tightly
##                   converged refits (the lowest criterion is the target)
##   optimizers      sleepstudy with each lme4 optimizer (tight tolerances)
##   subset, na_exclude   lmer(subset = Days > 2), na.action = na.exclude
##   glmer_edge      errors and fits lme4 gives for edge cases (constant response,
##                   quasi-complete separation, nAGQ > 1 with vector random effects,
##                   glmer(family = gaussian))
##   anova_types     lmerTest anova types I, II, III and marginal (hsb sector * cses,
##                   a boolean predictor and its "TRUE"/"FALSE" string twin)
##
## Data written to tests/reference/data/lme4args_*.csv. Run from the repository root:
##   Rscript tests/reference/make_lme4args_reference.R
## =============================================================================

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(nlme)
  library(jsonlite)
})
if (!file.exists("hierbayes/datasets/data/sleepstudy.csv"))
  stop("run from the repository root: Rscript tests/reference/make_lme4args_reference.R")

arr <- function(x) I(unname(as.vector(x)))
named <- function(x) stats::setNames(as.list(unname(as.vector(x))), names(x))
mat_rows <- function(m) lapply(seq_len(nrow(m)), function(i) arr(as.matrix(m)[i, ]))
`%||%` <- function(a, b) if (is.null(a)) b else a
DATA <- "tests/reference/data"
write_data <- function(d, name) {
  path <- file.path(DATA, paste0("lme4args_", name, ".csv"))
  write.csv(d, path, row.names = FALSE)
  path
}
TIGHT <- lmerControl(optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_abs = 1e-12, xtol_rel = 1e-12,
                                    maxeval = 1e5))
TIGHT_BOBYQA <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
TIGHT_NM <- lmerControl(optimizer = "Nelder_Mead",
                        optCtrl = list(FtolAbs = 1e-14, FtolRel = 1e-15, XtolRel = 1e-12, maxfun = 1e5))

tight_of <- function(m) {
  mt <- update(m, control = TIGHT)
  list(objective = if (isREML(mt)) REMLcrit(mt) else deviance(mt), theta = named(getME(mt, "theta")),
       beta = named(fixef(mt)), sigma = sigma(mt), se = named(sqrt(diag(as.matrix(vcov(mt))))))
}
lmer_record <- function(m, data_path, weights = NULL, extra = list()) {
  reml <- isREML(m)
  vc <- as.matrix(vcov(m))
  re <- ranef(m)
  c(list(
    formula = paste(deparse(formula(m)), collapse = " "), data = data_path, weights = weights, REML = reml,
    objective = if (reml) REMLcrit(m) else deviance(m),
    logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m), nobs = nobs(m),
    deviance_ml = -2 * as.numeric(logLik(m, REML = FALSE)),
    theta = named(getME(m, "theta")), beta = named(fixef(m)), sigma = sigma(m),
    se = named(sqrt(diag(vc))), vcov = mat_rows(vc),
    ranef = lapply(re, function(r) list(levels = arr(rownames(r)), terms = arr(colnames(r)),
                                        values = mat_rows(as.matrix(r)))),
    fitted_head = arr(head(fitted(m), 10)), residuals_head = arr(head(residuals(m), 10))
  ), extra)
}

## ---------------------------------------------------------------------------------------------
## weighted lmer: lme4's tests/priorWeights.R
## ---------------------------------------------------------------------------------------------
set.seed(1)
nGroups <- 100; nObs <- 1000
explVar1 <- rnorm(nObs); explVar2 <- rnorm(nObs)
groupFac <- as.factor(rep(1:nGroups, each = nObs / nGroups))
randEff0 <- rep(rnorm(nGroups), each = nObs / nGroups)
randEff1 <- rep(rnorm(nGroups), each = nObs / nGroups)
randEff2 <- rep(rnorm(nGroups), each = nObs / nGroups)
residSD <- rpois(nObs, 1) + 1
residError <- rnorm(nObs, sd = residSD)
pw <- data.frame(y = randEff0 + (1 + randEff1) * explVar1 + (1 + randEff2) * explVar2 + residError,
                 x = explVar1, z = explVar2, g = groupFac, v = residSD^2, w = 1 / residSD^2)
pw_path <- write_data(pw, "priorweights")

weighted <- list()
pw_cases <- list(ML1 = list(y ~ x + (1 | g), FALSE), REML1 = list(y ~ x + (1 | g), TRUE),
                 ML2 = list(y ~ x + (x | g), FALSE), REML2 = list(y ~ x + (x | g), TRUE),
                 ML3 = list(y ~ x + z + (x + z | g), FALSE), REML3 = list(y ~ x + z + (x + z | g), TRUE))
lme_random <- list(ML1 = ~ 1 | g, REML1 = ~ 1 | g, ML2 = ~ x | g, REML2 = ~ x | g, ML3 = ~ x + z | g,
                   REML3 = ~ x + z | g)
for (id in names(pw_cases)) {
  cs <- pw_cases[[id]]
  cat("priorWeights", id, "\n")
  m <- lmer(cs[[1]], pw, weights = w, REML = cs[[2]])
  mt <- lmer(cs[[1]], pw, weights = w, REML = cs[[2]], control = TIGHT)
  fe <- if (id %in% c("ML3", "REML3")) y ~ x + z else y ~ x
  lm_e <- lme(fe, random = lme_random[[id]], data = pw, weights = varFixed(~v),
              method = if (cs[[2]]) "REML" else "ML", control = lmeControl(opt = "optim"))
  weighted[[paste0("priorweights_", id)]] <- lmer_record(m, pw_path, "w", list(
    tight = list(objective = if (cs[[2]]) REMLcrit(mt) else deviance(mt), theta = named(getME(mt, "theta")),
                 beta = named(fixef(mt)), sigma = sigma(mt), se = named(sqrt(diag(as.matrix(vcov(mt)))))),
    nlme = list(logLik = as.numeric(logLik(lm_e)), beta = named(fixef(lm_e)), sigma = lm_e$sigma)))
}

## sleepstudy with simulated weights (priorWeights.R; our own seed so the weights are reproducible)
sleep <- read.csv("hierbayes/datasets/data/sleepstudy.csv"); sleep$Subject <- factor(sleep$Subject)
set.seed(15)
sleep$w <- 1 / (rpois(nrow(sleep), 1) + 1)
sleep$w5 <- 5
sleep$w0 <- sleep$w; sleep$w0[c(3, 50, 51, 100, 177)] <- 0
sleep_path <- write_data(sleep, "sleepstudy_weights")
for (reml in c(FALSE, TRUE)) {
  id <- paste0("sleep_weights_", if (reml) "reml" else "ml")
  m <- lmer(Reaction ~ Days + (Days | Subject), sleep, weights = w, REML = reml)
  mt <- lmer(Reaction ~ Days + (Days | Subject), sleep, weights = w, REML = reml, control = TIGHT)
  weighted[[id]] <- lmer_record(m, sleep_path, "w", list(
    tight = list(objective = if (reml) REMLcrit(mt) else deviance(mt), theta = named(getME(mt, "theta")),
                 beta = named(fixef(mt)), sigma = sigma(mt))))
}
## constant weights: the same deviance as without weights (priorWeights.R's last check)
fm <- lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE)
fm_wt <- lmer(Reaction ~ Days + (Days | Subject), sleep, weights = w5, REML = FALSE)
weighted$sleep_constant5_ml <- lmer_record(fm_wt, sleep_path, "w5", list(deviance_unweighted = deviance(fm),
                                                                          tight = tight_of(fm_wt)))
## zero weights: lme4 1.1-31's criterion is infinite; the reference is the fit of the other rows
m0 <- suppressWarnings(lmer(Reaction ~ Days + (Days | Subject), sleep, weights = w0))
sub <- sleep[sleep$w0 > 0, ]
msub <- lmer(Reaction ~ Days + (Days | Subject), sub, weights = w0)
weighted$sleep_zero_weights_reml <- lmer_record(msub, sleep_path, "w0", list(
  note = "fit of the rows with w0 > 0; lme4 with the zero-weight rows returns REMLcrit = Inf",
  tight = tight_of(msub),
  lme4_with_zero_rows = list(REMLcrit = REMLcrit(m0), logLik = as.numeric(logLik(m0)))))

## the n = 40 case of priorWeights.R (lme4.0 was wrong there)
set.seed(2)
n <- 40
w40 <- runif(n); x40 <- runif(n)
g40 <- factor(sample(1:10, n, replace = TRUE))
Z40 <- model.matrix(~ g40 - 1)
y40 <- as.vector(Z40 %*% rnorm(ncol(Z40)) + x40 + rnorm(n) / w40^.5)
n40 <- data.frame(y = y40, x = x40, g = g40, w = w40)
n40_path <- write_data(n40, "n40")
m40 <- lmer(y ~ x + (1 | g), n40, weights = w, REML = TRUE)
weighted$n40_reml <- lmer_record(m40, n40_path, "w", list(tight = tight_of(m40)))

## priorWeightsModComp.R: anova(fm1, fm2) with weights w and 10 w (seeds 0..4)
modcomp <- list()
mc_weights <- data.frame(row = seq_len(nrow(sleep)))
for (seed in 0:4) {
  set.seed(seed)
  wt <- 1 / (rpois(nrow(sleep), 1) + 1)
  mc_weights[[paste0("seed", seed)]] <- wt
  d <- transform(sleep, wt = wt, wt10 = 10 * wt)
  tabs <- lapply(c("wt", "wt10"), function(col) {
    d$.w <- d[[col]]
    fm1 <- lmer(Reaction ~ Days + (Days | Subject), d, REML = FALSE, weights = .w)
    fm2 <- lmer(Reaction ~ Days + (1 | Subject), d, REML = FALSE, weights = .w)
    a <- anova(fm1, fm2)
    list(npar = arr(a$npar), AIC = arr(a$AIC), BIC = arr(a$BIC), logLik = arr(a$logLik),
         deviance = arr(a$deviance), Chisq = arr(a$Chisq), Df = arr(a$Df), p = arr(a[["Pr(>Chisq)"]]))
  })
  modcomp[[paste0("seed", seed)]] <- list(weights_column = paste0("seed", seed), w = tabs[[1]], w10 = tabs[[2]])
}
modcomp$weights_data <- write_data(mc_weights, "modcomp_weights")

## ---------------------------------------------------------------------------------------------
## weighted glmer: lme4's tests/glmmWeights.R (Poisson) and binomial proportions
## ---------------------------------------------------------------------------------------------
source(system.file("testdata/lme-tst-funs.R", package = "lme4", mustWork = TRUE))  # gSim()
glmer_record <- function(m, data_path, weights = NULL) {
  vc <- as.matrix(vcov(m))
  list(formula = paste(deparse(formula(m)), collapse = " "), data = data_path, weights = weights,
       family = family(m)$family, minus2logLik = -2 * as.numeric(logLik(m)), deviance = deviance(m),
       AIC = AIC(m), theta = named(getME(m, "theta")), beta = named(fixef(m)), se = named(sqrt(diag(vc))),
       nobs = nobs(m))
}
GTIGHT <- glmerControl(tolPwrss = 1e-12, optimizer = c("bobyqa", "bobyqa"), optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
set.seed(101)
dP <- gSim(family = poisson())[, c("y", "x", "block")]
dP$block <- as.character(dP$block)
dP$w2 <- 2
dP$wv <- rep(c(1, 2, 3, 0.5), length.out = nrow(dP))
dP_path <- write_data(dP, "poisson_weights")
wglmer <- list()
for (wc in c("w2", "wv")) {
  dP$.w <- dP[[wc]]
  m <- suppressWarnings(glmer(y ~ x + (1 | block), dP, family = poisson, weights = .w, control = GTIGHT))
  wglmer[[paste0("poisson_", wc)]] <- glmer_record(m, dP_path, wc)
}
m_unw <- glmer(y ~ x + (1 | block), dP, family = poisson, control = GTIGHT)
wglmer$poisson_unweighted <- glmer_record(m_unw, dP_path)
cbpp <- read.csv("hierbayes/datasets/data/cbpp.csv"); cbpp$herd <- factor(cbpp$herd); cbpp$period <- factor(cbpp$period)
cbpp$prop <- cbpp$incidence / cbpp$size
m <- glmer(prop ~ period + (1 | herd), cbpp, family = binomial, weights = size, control = GTIGHT)
wglmer$cbpp_prop <- glmer_record(m, "hierbayes/datasets/data/cbpp.csv", "size")

## ---------------------------------------------------------------------------------------------
## tight optimum: nlme's Machines and Oxide
## ---------------------------------------------------------------------------------------------
M <- as.data.frame(Machines); M$Worker <- as.character(M$Worker); M$Machine <- as.character(M$Machine)
M_path <- write_data(M, "machines")
M$Worker <- factor(M$Worker); M$Machine <- factor(M$Machine)
O <- as.data.frame(Oxide)
for (col in c("Source", "Lot", "Wafer", "Site")) O[[col]] <- as.character(O[[col]])
O_path <- write_data(O, "oxide")
O$Lot <- factor(O$Lot); O$Wafer <- factor(O$Wafer)
tight_cases <- list(
  machines_corr = list(score ~ Machine + (0 + Machine | Worker), "M", M_path),
  machines_uncorr = list(score ~ Machine + (Machine || Worker), "M", M_path),
  oxide_nested = list(Thickness ~ 1 + (1 | Lot/Wafer), "O", O_path)
)
tight <- list()
cov_worker <- function(m) {
  ## the identified part of (Machine || Worker): each worker's covariance of the three machine cells
  vc <- VarCorr(m)
  S <- matrix(0, 3, 3)
  for (blk in vc) {
    nm <- colnames(blk)
    if (identical(nm, "(Intercept)")) S <- S + as.numeric(blk) else S <- S + as.matrix(blk)
  }
  S
}
for (id in names(tight_cases)) {
  cs <- tight_cases[[id]]
  d <- get(cs[[2]])
  cat("tight", id, "\n")
  fits <- list(default = lmer(cs[[1]], d),
               nloptwrap_tight = lmer(cs[[1]], d, control = TIGHT),
               bobyqa_tight = lmer(cs[[1]], d, control = TIGHT_BOBYQA),
               nelder_mead_tight = lmer(cs[[1]], d, control = TIGHT_NM))
  rec <- lapply(fits, function(m) {
    r <- list(REMLcrit = REMLcrit(m), theta = named(getME(m, "theta")), beta = named(fixef(m)), sigma = sigma(m),
              se = named(sqrt(diag(as.matrix(vcov(m))))), feval = m@optinfo$feval,
              conv_messages = arr(m@optinfo$conv$lme4$messages %||% character(0)))
    if (id != "oxide_nested") r$worker_cov = mat_rows(cov_worker(m))
    r
  })
  crit <- sapply(fits, REMLcrit)
  tight[[id]] <- list(formula = paste(deparse(cs[[1]]), collapse = " "), data = cs[[3]], fits = rec,
                      lowest = names(which.min(crit)))
}

## ---------------------------------------------------------------------------------------------
## optimizers, subset, na.exclude (sleepstudy)
## ---------------------------------------------------------------------------------------------
optimizers <- list()
for (opt in c("nloptwrap", "bobyqa", "Nelder_Mead", "nlminbwrap")) {
  m <- lmer(Reaction ~ Days + (Days | Subject), sleep, control = lmerControl(optimizer = opt))
  optimizers[[opt]] <- list(REMLcrit = REMLcrit(m), theta = named(getME(m, "theta")), beta = named(fixef(m)))
}
m <- lmer(Reaction ~ Days + (Days | Subject), sleep, subset = Days > 2)
subset_rec <- lmer_record(m, "hierbayes/datasets/data/sleepstudy.csv", NULL,
                          list(subset = "Days > 2", tight = tight_of(m)))
sna <- sleep[, c("Reaction", "Days", "Subject")]
sna$Reaction[c(2, 40)] <- NA; sna$Days[77] <- NA
sna_path <- write_data(sna, "sleepstudy_na")
m <- lmer(Reaction ~ Days + (Days | Subject), sna, na.action = na.exclude)
mt <- update(m, control = TIGHT)
na_exclude <- list(data = sna_path, n_residuals = length(residuals(m)), residuals = arr(residuals(m)),
                   fitted = arr(fitted(m)), nobs = nobs(m), REMLcrit = REMLcrit(m),
                   tight = list(residuals = arr(residuals(mt)), fitted = arr(fitted(mt)), REMLcrit = REMLcrit(mt)),
                   omit = list(n_residuals = length(residuals(update(m, na.action = na.omit)))))

## ---------------------------------------------------------------------------------------------
## glmer edge cases
## ---------------------------------------------------------------------------------------------
try_msg <- function(expr) {
  w <- character(0)
  r <- withCallingHandlers(tryCatch(expr, error = function(e) e),
                           warning = function(x) { w <<- c(w, conditionMessage(x)); invokeRestart("muffleWarning") })
  list(error = if (inherits(r, "error")) conditionMessage(r) else NULL, warnings = arr(w), value = r)
}
set.seed(1)
ed <- data.frame(g = rep(sprintf("g%02d", 1:10), each = 6), x = rnorm(60))
ed$f <- rep(c("a", "b", "c"), 20)
ed$yq <- rbinom(60, 1, 0.5); ed$yq[ed$f == "c"] <- 1
ed$ys <- as.numeric(ed$x > 0)
ed$y0 <- 0; ed$y1 <- 1
ed$big <- rpois(60, 5) * 1e12 + rpois(60, 1e6)
ed$yg <- rnorm(60)
ed_path <- write_data(ed, "edge")
edge <- list(data = ed_path)
r <- try_msg(glmer(y0 ~ x + (1 | g), ed, family = poisson)); edge$poisson_all_zero <- r[c("error", "warnings")]
r <- try_msg(glmer(y1 ~ x + (1 | g), ed, family = binomial)); edge$binomial_all_one <- r[c("error", "warnings")]
r <- try_msg(glmer(ys ~ x + (1 | g), ed, family = binomial)); edge$complete_separation <- r[c("error", "warnings")]
r <- try_msg(glmer(yq ~ f + x + (1 | g), ed, family = binomial))
edge$quasi_separation <- c(r[c("error", "warnings")],
                           list(beta = named(fixef(r$value)), se = named(sqrt(diag(as.matrix(vcov(r$value)))))))
r <- try_msg(glmer(big ~ x + (1 | g), ed, family = poisson))
edge$counts_1e12 <- c(r[c("error", "warnings")], list(beta = named(fixef(r$value))))
r <- try_msg(glmer(yq ~ x + (x | g), ed, family = binomial, nAGQ = 5)); edge$nagq_vector <- r[c("error", "warnings")]
ed$h <- rep(sprintf("h%d", 1:5), 12)
r <- try_msg(glmer(yq ~ x + (1 | g) + (1 | h), ed, family = binomial, nAGQ = 5))
edge$nagq_two_terms <- r[c("error", "warnings")]
r <- try_msg(glmer(yq ~ x + (1 | g), ed, family = binomial, nAGQ = "a")); edge$nagq_string <- r[c("error", "warnings")]
r <- try_msg(glmer(yg ~ x + (1 | g), ed, family = gaussian))
edge$gaussian <- c(r[c("error", "warnings")], list(class = class(r$value)[1], REML = isREML(r$value),
                                                    REMLcrit = REMLcrit(r$value), beta = named(fixef(r$value))))
r <- try_msg(lmer(y1 ~ x + (1 | g), ed))
edge$lmer_constant <- c(r[c("error", "warnings")], list(REMLcrit = if (is.null(r$error)) REMLcrit(r$value)))
r <- try_msg(lmer(Reaction ~ Days + (Days | Subject), sleep, control = lmerControl(optimizer = "optimx")))
edge$optimx <- r[c("error", "warnings")]
r <- try_msg(lmer(Reaction ~ Days + (Days | Subject), sleep, start = c(1, 2))); edge$start_length <- r[c("error", "warnings")]
r <- try_msg(lmer(Reaction ~ Days + (Days | Subject), sleep, start = list(theta = c(1, 0, 1))))
edge$start_list <- c(r[c("error", "warnings")], list(REMLcrit = if (is.null(r$error)) REMLcrit(r$value)))
r <- try_msg(lmer(Reaction ~ Days + (Days | Subject), sleep, start = list(foo = 1))); edge$start_names <- r[c("error", "warnings")]

## ---------------------------------------------------------------------------------------------
## anova types (lmerTest)
## ---------------------------------------------------------------------------------------------
anova_rows <- function(a) lapply(seq_len(nrow(a)), function(i)
  c(list(term = rownames(a)[i]), lapply(as.list(a[i, ]), function(v) if (is.na(v)) NULL else v)))
hsb <- read.csv("hierbayes/datasets/data/hsb.csv")
hsb$school <- factor(hsb$school); hsb$sector <- factor(hsb$sector, levels = c("Public", "Catholic"))
mh <- lmerTest::lmer(mathach ~ sector * cses + mean_ses + (cses | school), hsb)
sleep$b <- sleep$Days > 4
sleep$s <- ifelse(sleep$b, "TRUE", "FALSE")
mb <- lmerTest::lmer(Reaction ~ b * Days + (1 | Subject), sleep)
ms <- lmerTest::lmer(Reaction ~ s * Days + (1 | Subject), sleep)
tr <- read.csv("tests/reference/data/sim_transforms.csv"); tr$g <- factor(tr$g)
mk <- lmerTest::lmer(y ~ k * z + log(x) + (1 | g), tr)
anova_types <- list()
for (id in c("hsb_sector", "sleep_boolean", "sleep_strings", "transforms_k")) {
  m <- switch(id, hsb_sector = mh, sleep_boolean = mb, sleep_strings = ms, transforms_k = mk)
  anova_types[[id]] <- list(
    formula = paste(deparse(formula(m)), collapse = " "),
    I = anova_rows(anova(m, type = "I")), II = anova_rows(anova(m, type = "II")),
    III = anova_rows(anova(m, type = "III")), marginal = anova_rows(anova(m, type = "marginal")),
    II_kenward_roger = anova_rows(anova(m, type = "II", ddf = "Kenward-Roger")))
}

res <- list(
  meta = list(R_version = R.version.string,
              packages = list(lme4 = as.character(packageVersion("lme4")),
                              lmerTest = as.character(packageVersion("lmerTest")),
                              nlme = as.character(packageVersion("nlme")),
                              Matrix = as.character(packageVersion("Matrix")),
                              jsonlite = as.character(packageVersion("jsonlite"))),
              date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
              command = "Rscript tests/reference/make_lme4args_reference.R",
              tight = "lmerControl(optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_abs = 1e-12, xtol_rel = 1e-12)); also bobyqa rhoend = 1e-12 and Nelder_Mead FtolAbs = 1e-14",
              platform = R.version$platform, file = "lme4args_reference.json"),
  weighted_lmer = weighted, modcomp = modcomp, weighted_glmer = wglmer, tight = tight,
  optimizers = optimizers, subset = subset_rec, na_exclude = na_exclude, glmer_edge = edge,
  anova_types = anova_types
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE),
           "tests/reference/lme4args_reference.json")
cat("wrote tests/reference/lme4args_reference.json\n")
