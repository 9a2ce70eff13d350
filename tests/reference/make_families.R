## =============================================================================
## make_families.R -- R reference numbers for GLMM families beyond binomial /
##                    Poisson (issue 22)
## =============================================================================
##
## Writes tests/reference/families_reference.json:
##   gamma      Gamma GLMMs (log, inverse, identity links) on lme4's
##              tests/glmmExt.R data and simulated data: lme4::glmer (default
##              and tight), glmmTMB (tight + Newton polish), and an independent
##              Laplace maximisation written here (laplace_*, below) for the
##              random-intercept cases.  The Laplace maximum is glmmTMB's; lme4
##              1.1-31 maximises something else (see `lme4_vs_laplace`).
##   inverse_gaussian   lme4::glmer (log and 1/mu^2 links) and the Laplace
##              maximum from laplace_* (glmmTMB 1.1.5 has no inverse Gaussian).
##   negative_binomial  lme4::glmer.nb tightly converged (theta =
##              getME(fit, "glmer.nb.theta")), glmmTMB nbinom2, and laplace_*
##              with lme4's and with glmmTMB's Laplace (see below).
##   ordinal    ordinal::clmm on the wine data (logit, probit; Laplace and
##              nAGQ = 10) and clm without the random effect.
## and the data it fits (tests/reference/data/): glmmext_gamma.csv,
## sim_gamma.csv, sim_invgauss.csv, nb_glmer_example.csv, nb_sim.csv,
## epil.csv, wine.csv.
##
## Run from the repository root:  Rscript tests/reference/make_families.R
## (a few minutes; glmer.nb on epil is the slow part).
## Layout and the meaning of every field: tests/reference/README.md.
## =============================================================================

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(MASS)
  library(ordinal)
  library(numDeriv)
  library(jsonlite)
})
if (!file.exists("hierbayes/datasets/data/grouseticks.csv"))
  stop("run from the repository root: Rscript tests/reference/make_families.R")

REF_DIR <- "tests/reference"
SIM_DIR <- file.path(REF_DIR, "data")
OUT <- file.path(REF_DIR, "families_reference.json")
COMMAND <- "Rscript tests/reference/make_families.R"

## ---------------------------------------------------------------------------
## JSON helpers (same conventions as make_references.R)
## ---------------------------------------------------------------------------
`%||%` <- function(a, b) if (is.null(a)) b else a
arr <- function(x) I(unname(as.vector(x)))
named <- function(x, nms = names(x)) {
  if (length(x) == 0) return(structure(list(), names = character(0)))
  stats::setNames(as.list(unname(as.vector(x))), nms)
}
mat_rows <- function(m) {
  m <- as.matrix(m)
  lapply(seq_len(nrow(m)), function(i) arr(m[i, ]))
}
named_matrix <- function(m) {
  m <- as.matrix(m)
  list(names = arr(colnames(m) %||% character(0)), values = mat_rows(m))
}
df_rows <- function(df, key = "term") {
  df <- as.data.frame(df, check.names = FALSE, stringsAsFactors = FALSE)
  rn <- rownames(df)
  lapply(seq_len(nrow(df)), function(i) {
    row <- lapply(df[i, , drop = FALSE], function(v) {
      v <- v[[1]]
      if (is.factor(v)) v <- as.character(v)
      unname(v)
    })
    c(stats::setNames(list(rn[i]), key), row)
  })
}
capture <- function(expr) {
  warns <- character(0); msgs <- character(0)
  value <- withCallingHandlers(expr,
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
  list(value = value, warnings = warns, messages = msgs)
}
safely <- function(expr) tryCatch(expr, error = function(e) list(error = conditionMessage(e)))
write_exact_csv <- function(d, path) {
  for (v in names(d)) {
    if (is.factor(d[[v]])) d[[v]] <- as.character(d[[v]])
    if (is.double(d[[v]])) {          # shortest of 15 / 17 significant digits that reads back exactly
      x <- d[[v]]
      s <- trimws(formatC(x, digits = 15, format = "g"))
      bad <- as.numeric(s) != x
      s[bad] <- sprintf("%.17g", x[bad])
      d[[v]] <- s
    }
  }
  write.csv(d, path, row.names = FALSE, quote = FALSE)
  cat("wrote", path, "\n")
}

## ---------------------------------------------------------------------------
## Data
## ---------------------------------------------------------------------------
## (1) lme4's tests/glmmExt.R: the same RNG calls in the same order, so the
##     columns are that file's d$x, d$y (Gamma, inverse link) and dgl$y
##     (Gamma, log link).  True values: eta = 4 + 3 x + b, b ~ N(0, 1),
##     shape 2 (sigma = CV = 1/sqrt(2) = 0.707).
set.seed(101)
d <- expand.grid(block = LETTERS[1:26], rep = 1:100, KEEP.OUT.ATTRS = FALSE)
d$x <- runif(nrow(d))
reff_f <- rnorm(length(levels(d$block)), sd = 1)
d$eta <- 4 + 3 * d$x + reff_f[d$block]
d$y_inverse <- rgamma(nrow(d), scale = (1 / d$eta) / 2, shape = 2)
d$y_log <- rgamma(nrow(d), scale = exp(d$eta) / 2, shape = 2)
glmmext_out <- data.frame(block = as.character(d$block), rep = d$rep, x = d$x, eta = d$eta,
                          y_inverse = d$y_inverse, y_log = d$y_log)

## (2) simulated Gamma data, seed 22: 40 groups g01..g40 x 15 rows,
##     x ~ U(-1, 1) (4 decimals).
##     y_slope: log link, eta = 1 + 0.5 x + b0 + b1 x, sd(b0) 0.5, sd(b1) 0.3,
##              corr 0.3, shape 4.
##     y_ident: identity link, mu = 10 + 4 x + c, sd(c) 1.5, shape 5.
set.seed(22)
ng <- 40; nper <- 15
sg <- data.frame(g = rep(sprintf("g%02d", seq_len(ng)), each = nper), x = round(runif(ng * nper, -1, 1), 4))
S <- matrix(c(0.5^2, 0.3 * 0.5 * 0.3, 0.3 * 0.5 * 0.3, 0.3^2), 2)
B <- matrix(rnorm(2 * ng), ng, 2) %*% chol(S)
gi <- match(sg$g, sprintf("g%02d", seq_len(ng)))
mu_s <- exp(1 + 0.5 * sg$x + B[gi, 1] + B[gi, 2] * sg$x)
sg$y_slope <- signif(rgamma(nrow(sg), shape = 4, scale = mu_s / 4), 8)
cc <- rnorm(ng, sd = 1.5)
mu_i <- 10 + 4 * sg$x + cc[gi]
sg$y_ident <- signif(rgamma(nrow(sg), shape = 5, scale = mu_i / 5), 8)

## (3) simulated inverse Gaussian data, seed 23: 30 groups g01..g30 x 20
##     rows, x ~ U(0, 1) (4 decimals), dispersion phi = 1/lambda = 0.3.
##     y_log: log link, eta = 0.5 + 0.8 x + b, sd(b) = 0.4.
##     y_mu2: link 1/mu^2 (R's default), eta = 0.3 + 0.2 x + c, sd(c) = 0.05.
##     Drawn by Michael, Schucany & Haas (1976).
rinvgauss <- function(mu, lambda) {
  n <- length(mu)
  y <- rnorm(n)^2
  x <- mu + mu^2 * y / (2 * lambda) - mu / (2 * lambda) * sqrt(4 * mu * lambda * y + mu^2 * y^2)
  ifelse(runif(n) <= mu / (mu + x), x, mu^2 / x)
}
set.seed(23)
ng <- 30; nper <- 20
si <- data.frame(g = rep(sprintf("g%02d", seq_len(ng)), each = nper), x = round(runif(ng * nper), 4))
gi <- match(si$g, sprintf("g%02d", seq_len(ng)))
b <- rnorm(ng, sd = 0.4)
si$y_log <- signif(rinvgauss(exp(0.5 + 0.8 * si$x + b[gi]), 1 / 0.3), 8)
c2 <- rnorm(ng, sd = 0.05)
si$y_mu2 <- signif(rinvgauss((0.3 + 0.2 * si$x + c2[gi])^-0.5, 1 / 0.3), 8)

## (4) ?glmer.nb example data (lme4 1.1-31 help page, set.seed(101)).
set.seed(101)
dd <- expand.grid(f1 = factor(1:3), f2 = LETTERS[1:2], g = 1:9, rep = 1:15, KEEP.OUT.ATTRS = FALSE)
mu <- 5 * (-4 + with(dd, as.integer(f1) + 4 * as.numeric(f2)))
dd$y <- rnbinom(nrow(dd), mu = mu, size = 0.5)
nbex_out <- data.frame(f1 = as.integer(dd$f1), f2 = as.character(dd$f2), g = dd$g, rep = dd$rep, y = dd$y)

## (5) lme4's tests/nbinom.R simfun() with set.seed(102): 25 blocks (f = A..Y)
##     x 40, z ~ NB(mu = exp(1 + 2 x + u_f), size 0.5), sd(u) = 1.
simfun <- function(sd.u = 1, NBtheta = 0.5, nblock = 25, fform = ~x, beta = c(1, 2), nrep = 40) {
  ntot <- nblock * nrep
  d1 <- data.frame(x = runif(ntot), f = rep(LETTERS[1:nblock], each = nrep))
  u_f <- rnorm(nblock, sd = sd.u)
  X <- model.matrix(fform, data = d1)
  transform(d1, z = rnbinom(ntot, mu = exp(X %*% beta + u_f[match(f, LETTERS)]), size = NBtheta))
}
set.seed(102)
nbsim_out <- simfun()

## (6) MASS::epil with nbinom.R's transformations.
epil_out <- with(MASS::epil, data.frame(y = y, trt = as.character(trt), base = base, age = age, V4 = V4,
                                        subject = subject, period = period,
                                        Visit = (period - 2.5) / 5, Base = log(base / 4), Age = log(age)))

## (7) ordinal::wine.
wine_out <- with(ordinal::wine, data.frame(response = response, rating = as.integer(as.character(rating)),
                                           temp = as.character(temp), contact = as.character(contact),
                                           bottle = as.integer(as.character(bottle)),
                                           judge = as.integer(as.character(judge))))

FILES <- list(
  glmmext_gamma = list(d = glmmext_out, factors = "block"),
  sim_gamma = list(d = sg, factors = "g"),
  sim_invgauss = list(d = si, factors = "g"),
  nb_glmer_example = list(d = nbex_out, factors = c("f1", "f2", "g")),
  nb_sim = list(d = nbsim_out, factors = "f"),
  epil = list(d = epil_out, factors = c("trt", "subject")),
  wine = list(d = wine_out, factors = c("temp", "contact", "bottle", "judge"))
)
DATA <- list(); DATA_PATH <- list()
for (nm in names(FILES)) {
  path <- file.path(SIM_DIR, paste0(nm, ".csv"))
  write_exact_csv(FILES[[nm]]$d, path)
  dd <- read.csv(path, stringsAsFactors = FALSE)
  for (f in FILES[[nm]]$factors) dd[[f]] <- factor(dd[[f]])
  DATA[[nm]] <- dd; DATA_PATH[[nm]] <- path
}
DATA$wine$rating <- factor(DATA$wine$rating, levels = 1:5, ordered = TRUE)
DATA$epil$trt <- factor(DATA$epil$trt, levels = c("placebo", "progabide"))
gt <- read.csv("hierbayes/datasets/data/grouseticks.csv", stringsAsFactors = FALSE)
for (f in c("INDEX", "BROOD", "YEAR", "LOCATION")) gt[[f]] <- factor(gt[[f]])
DATA$grouseticks <- gt; DATA_PATH$grouseticks <- "hierbayes/datasets/data/grouseticks.csv"
for (nm in names(DATA)) assign(nm, DATA[[nm]], envir = globalenv())

## ---------------------------------------------------------------------------
## An independent Laplace approximation for one scalar random intercept per
## group (groups are independent, so the q-dimensional Laplace factorises into
## one-dimensional ones):
##   -2 log L = sum_i [ -2 sum_j log f(y_ij | eta_ij(u_i), phi) + u_i^2
##                      + log(1 + sd^2 sum_j w_ij) ],  eta = X beta + sd u,
## u_i the mode of sum_j log f(y_ij | u_i) - u_i^2 / 2 (Newton to 1e-13), and
##   w = -d2 log f / d eta2 at the mode       ("observed": TMB / glmmTMB), or
##   w = E[-d2 log f / d eta2] = mu.eta^2 / (phi V(mu))  ("expected": lme4's
##       Laplace determinant, from the PIRLS weights).
## phi: Gamma shape = 1/phi (phi = sigma^2 = CV^2, glmmTMB's sigma = sqrt(phi));
## inverse Gaussian lambda = 1/phi; NB2 phi = theta (size).
## ---------------------------------------------------------------------------
fam_fun <- function(family) switch(family,
  Gamma = list(
    ll = function(y, mu, phi) dgamma(y, shape = 1 / phi, scale = mu * phi, log = TRUE),
    d1 = function(y, mu, phi) (y - mu) / (phi * mu^2),
    d2 = function(y, mu, phi) (1 / mu^2 - 2 * y / mu^3) / phi,
    fisher = function(mu, phi) 1 / (phi * mu^2)),
  inverse.gaussian = list(
    ll = function(y, mu, phi) -0.5 * log(2 * pi * phi * y^3) - (y - mu)^2 / (2 * phi * mu^2 * y),
    d1 = function(y, mu, phi) (y - mu) / (phi * mu^3),
    d2 = function(y, mu, phi) (-1 / mu^3 - 3 * (y - mu) / mu^4) / phi,
    fisher = function(mu, phi) 1 / (phi * mu^3)),
  nbinom2 = list(
    ll = function(y, mu, phi) dnbinom(y, size = phi, mu = mu, log = TRUE),
    d1 = function(y, mu, phi) y / mu - (y + phi) / (phi + mu),
    d2 = function(y, mu, phi) -y / mu^2 + (y + phi) / (phi + mu)^2,
    fisher = function(mu, phi) 1 / (mu + mu^2 / phi)))
link_fun <- function(link) switch(link,
  log = list(inv = function(eta) exp(eta), m1 = function(mu) mu, m2 = function(mu) mu),
  inverse = list(inv = function(eta) 1 / eta, m1 = function(mu) -mu^2, m2 = function(mu) 2 * mu^3),
  "1/mu^2" = list(inv = function(eta) 1 / sqrt(eta), m1 = function(mu) -0.5 * mu^3, m2 = function(mu) 0.75 * mu^5),
  identity = list(inv = function(eta) eta, m1 = function(mu) 1 + 0 * mu, m2 = function(mu) 0 * mu))
laplace_dev <- function(beta, sd, phi, y, X, g, family, link, hess = "observed", tol = 1e-13, maxit = 200) {
  fm <- fam_fun(family); lk <- link_fun(link)
  g <- as.integer(g); ng <- max(g)
  eta0 <- drop(X %*% beta)
  u <- numeric(ng)
  for (it in seq_len(maxit)) {
    mu <- lk$inv(eta0 + sd * u[g])
    if (any(!is.finite(mu)) || any(mu <= 0)) return(Inf)
    f1 <- fm$d1(y, mu, phi); f2 <- fm$d2(y, mu, phi)
    m1 <- lk$m1(mu); m2 <- lk$m2(mu)
    gr <- sd * rowsum(f1 * m1, g, reorder = TRUE)[, 1] - u
    H <- sd^2 * rowsum(f2 * m1^2 + f1 * m2, g, reorder = TRUE)[, 1] - 1
    step <- ifelse(H < 0, -gr / H, gr)
    step <- pmax(pmin(step, 1), -1)
    u <- u + step
    if (max(abs(step)) < tol) break
  }
  mu <- lk$inv(eta0 + sd * u[g])
  if (any(!is.finite(mu)) || any(mu <= 0)) return(Inf)
  m1 <- lk$m1(mu); m2 <- lk$m2(mu)
  w <- if (hess == "observed") -(fm$d2(y, mu, phi) * m1^2 + fm$d1(y, mu, phi) * m2) else fm$fisher(mu, phi) * m1^2
  det <- 1 + sd^2 * rowsum(w, g, reorder = TRUE)[, 1]
  if (any(det <= 0)) return(Inf)
  val <- -2 * sum(fm$ll(y, mu, phi)) + sum(u^2) + sum(log(det))
  attr(val, "u") <- u
  val
}
## Maximise over p = (beta, log sd, log phi): nlminb, then Newton steps with
## numDeriv (Richardson) derivatives until the gradient stops shrinking.  The
## covariance of (beta, log sd, log phi) is 2 H^{-1} (H: Hessian of -2 log L),
## as glmmTMB's sdreport computes it from the Hessian of the outer parameters.
laplace_fit <- function(y, X, g, family, link, start, hess = "observed", fix_phi = NULL) {
  p <- ncol(X)
  fn <- function(par) {
    phi <- if (is.null(fix_phi)) exp(par[p + 2]) else fix_phi
    as.numeric(laplace_dev(par[1:p], exp(par[p + 1]), phi, y, X, g, family, link, hess))
  }
  o <- nlminb(start, fn, control = list(rel.tol = 1e-15, x.tol = 1e-12, eval.max = 5000, iter.max = 5000))
  par <- o$par
  gbest <- max(abs(grad(fn, par)))
  for (k in 1:10) {
    H <- hessian(fn, par)
    cand <- par - solve(H, grad(fn, par))
    gc <- max(abs(grad(fn, cand)))
    if (!is.finite(gc) || gc >= gbest) break
    par <- cand; gbest <- gc
    if (gbest < 1e-9) break
  }
  H <- hessian(fn, par)
  V <- 2 * solve(H)
  dev <- fn(par)
  nm <- c(colnames(X), "log_sd", if (is.null(fix_phi)) "log_phi")
  names(par) <- nm; dimnames(V) <- list(nm, nm)
  u <- attr(laplace_dev(par[1:p], exp(par[p + 1]), if (is.null(fix_phi)) exp(par[p + 2]) else fix_phi,
                        y, X, g, family, link, hess), "u")
  list(par = par, minus2logLik = dev, logLik = -dev / 2, beta = par[1:p], sd = exp(par[p + 1]),
       phi = if (is.null(fix_phi)) exp(par[p + 2]) else fix_phi,
       se_beta = sqrt(diag(V))[1:p], vcov_beta = V[1:p, 1:p, drop = FALSE], vcov_par = V,
       max_abs_gradient = gbest, u = u, hess = hess, nlminb_message = o$message)
}
laplace_record <- function(lf, family) {
  out <- list(hess = lf$hess, minus2logLik = lf$minus2logLik, logLik = lf$logLik,
              beta = named(lf$beta), se_beta = named(lf$se_beta), vcov_beta = named_matrix(lf$vcov_beta),
              sd = lf$sd, phi = lf$phi,
              par = named(lf$par), vcov_par = named_matrix(lf$vcov_par),
              max_abs_gradient = lf$max_abs_gradient, modes_u = arr(lf$u), b = arr(lf$u * lf$sd))
  if (family %in% c("Gamma", "inverse.gaussian")) out$sigma <- sqrt(lf$phi)
  if (family == "nbinom2") out$nb_theta <- lf$phi
  out
}

## ---------------------------------------------------------------------------
## glmmTMB, tight: nlminb (rel.tol 1e-15), Newton steps on the outer
## parameters with TMB's gradient, refit from the polished values (as in
## make_structures.R)
## ---------------------------------------------------------------------------
TMB_TIGHT <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-15))
TMB_TIGHT_TEXT <- paste("glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-15)),",
                        "then Newton steps on the outer parameters (TMB gradient, optimHess) and a refit",
                        "with start = the polished parameters")
tmb_fit <- function(formula, data, ...) {
  cap1 <- capture(glmmTMB(formula, data = data, control = TMB_TIGHT, ...))
  m1 <- cap1$value
  obj <- m1$obj; par <- m1$fit$par
  g0 <- max(abs(obj$gr(par)))
  gbest <- g0
  for (k in 1:8) {
    H <- optimHess(par, obj$fn, obj$gr)
    cand <- par - solve(H, drop(obj$gr(par)))
    gc <- max(abs(obj$gr(cand)))
    if (!is.finite(gc) || gc >= gbest) break
    par <- cand; gbest <- gc
    if (gbest < 1e-12) break
  }
  st <- split(unname(par), factor(names(par), levels = unique(names(par))))
  cap2 <- capture(glmmTMB(formula, data = data, control = TMB_TIGHT, start = st, ...))
  m2 <- cap2$value
  list(fit = m2, warnings = c(cap1$warnings, cap2$warnings),
       gradient_nlminb = g0, gradient_polished = max(abs(m2$sdr$gradient.fixed)),
       polish_par_change = max(abs(m2$fit$par - m1$fit$par)))
}
tmb_record <- function(tf, family) {
  m <- tf$fit
  l <- logLik(m)
  vc <- VarCorr(m)$cond
  ct <- summary(m)$coefficients$cond
  rec <- list(control = TMB_TIGHT_TEXT,
              logLik = as.numeric(l), minus2logLik = -2 * as.numeric(l), logLik_df = attr(l, "df"),
              AIC = AIC(m), BIC = BIC(m),
              beta = named(fixef(m)$cond), vcov = named_matrix(vcov(m)$cond), coef_table = df_rows(ct, "term"),
              sigma = sigma(m),
              varcorr = lapply(vc, function(S) list(terms = arr(colnames(S)), sd = named(attr(S, "stddev")),
                                                     corr = mat_rows(attr(S, "correlation")))),
              theta = named(getME(m, "theta"), paste0("theta", seq_along(getME(m, "theta")))),
              par = named(m$fit$par, make.unique(names(m$fit$par))),
              max_abs_gradient = tf$gradient_polished, max_abs_gradient_before_polish = tf$gradient_nlminb,
              polish_par_change = tf$polish_par_change, pdHess = m$sdr$pdHess,
              fit_warnings = arr(tf$warnings))
  if (family == "Gamma") rec$dispersion_note <- "sigma(fit) = CV = 1/sqrt(shape); glmmTMB prints sigma^2 as 'Dispersion estimate'"
  if (family == "nbinom2") rec$nb_theta <- sigma(m)
  rec
}

## ---------------------------------------------------------------------------
## lme4 records
## ---------------------------------------------------------------------------
GLMER_TIGHT <- glmerControl(tolPwrss = 1e-12, optimizer = c("bobyqa", "bobyqa"),
                            optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
GLMER_TIGHT_TEXT <- paste("glmerControl(tolPwrss = 1e-12, optimizer = c('bobyqa', 'bobyqa'),",
                          "optCtrl = list(rhoend = 1e-10, maxfun = 1e5))")
varcorr_rows <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i)
    list(grp = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
         var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i], vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}
lme4_record <- function(m, cap = NULL, control_text) {
  l <- logLik(m)
  re <- ranef(m, condVar = TRUE)
  rec <- list(control = control_text,
              logLik = as.numeric(l), minus2logLik = -2 * as.numeric(l), logLik_df = attr(l, "df"),
              AIC = AIC(m), BIC = BIC(m), deviance = deviance(m),
              beta = named(fixef(m)), vcov = named_matrix(as.matrix(vcov(m))),
              coef_table = df_rows(summary(m)$coefficients, "term"),
              theta = named(getME(m, "theta")), sigma = sigma(m), useSc = as.logical(m@devcomp$dims[["useSc"]]),
              varcorr = varcorr_rows(m),
              ranef = lapply(re, function(r) list(levels = arr(rownames(r)), terms = arr(colnames(r)),
                                                  values = mat_rows(as.matrix(r)))),
              devcomp = named(m@devcomp$cmp[c("ldL2", "ussq", "wrss", "pwrss", "drsum", "dev", "sigmaML")]),
              conv_messages = arr(as.character(m@optinfo$conv$lme4$messages %||% character(0))),
              isSingular = isSingular(m))
  if (!is.null(cap)) { rec$fit_warnings <- arr(cap$warnings); rec$fit_messages <- arr(cap$messages) }
  rec
}

## ---------------------------------------------------------------------------
## Gamma and inverse Gaussian
## ---------------------------------------------------------------------------
gl <- function(id, data, formula, family, link, laplace = TRUE, source, note = NULL)
  list(id = id, data = data, formula = formula, family = family, link = link, laplace = laplace,
       source = source, note = note)
GAMMA_CASES <- list(
  gl("glmmext_gamma_log", "glmmext_gamma", "y_log ~ x + (1 | block)", "Gamma", "log",
     source = "lme4 tests/glmmExt.R, ggl2 (the issue's 0.63 vs 0.89 case)"),
  gl("glmmext_gamma_log_int", "glmmext_gamma", "y_log ~ 1 + (1 | block)", "Gamma", "log",
     source = "lme4 tests/glmmExt.R, ggl1"),
  gl("glmmext_gamma_inverse", "glmmext_gamma", "y_inverse ~ x + (1 | block)", "Gamma", "inverse",
     source = "lme4 tests/glmmExt.R, gm3"),
  gl("glmmext_gamma_inverse_int", "glmmext_gamma", "y_inverse ~ 1 + (1 | block)", "Gamma", "inverse",
     source = "lme4 tests/glmmExt.R, gm2"),
  gl("sim_gamma_identity", "sim_gamma", "y_ident ~ x + (1 | g)", "Gamma", "identity",
     source = "simulated (seed 22): mu = 10 + 4 x + c, sd(c) = 1.5, shape 5 (sigma = 0.447)"),
  gl("sim_gamma_slope", "sim_gamma", "y_slope ~ x + (x | g)", "Gamma", "log", laplace = FALSE,
     source = "simulated (seed 22): eta = 1 + 0.5 x + b0 + b1 x, sd 0.5 / 0.3, corr 0.3, shape 4 (sigma = 0.5)",
     note = "random slope: no laplace_* reference (it handles one scalar random intercept); glmmTMB is the Laplace maximum")
)
IG_CASES <- list(
  gl("sim_invgauss_log", "sim_invgauss", "y_log ~ x + (1 | g)", "inverse.gaussian", "log",
     source = "simulated (seed 23): eta = 0.5 + 0.8 x + b, sd(b) = 0.4, phi = 0.3 (sigma = 0.548)"),
  gl("sim_invgauss_mu2", "sim_invgauss", "y_mu2 ~ x + (1 | g)", "inverse.gaussian", "1/mu^2",
     source = "simulated (seed 23): 1/mu^2 = 0.3 + 0.2 x + c, sd(c) = 0.05, phi = 0.3 (sigma = 0.548)")
)

family_call <- function(family, link) get(family)(link = link)
gamma_record <- function(cs) {
  d <- get(cs$data)
  f <- as.formula(cs$formula)
  fam <- family_call(cs$family, cs$link)
  cap_def <- capture(glmer(f, data = d, family = fam))
  cap <- capture(glmer(f, data = d, family = fam, control = GLMER_TIGHT))
  m <- cap$value
  rec <- list(data = DATA_PATH[[cs$data]], formula = cs$formula, family = cs$family, link = cs$link,
              source = cs$source, note = cs$note,
              lme4 = lme4_record(m, cap, GLMER_TIGHT_TEXT),
              lme4_default = lme4_record(cap_def$value, cap_def, "glmerControl() (defaults)"))
  lap <- NULL
  if (cs$family == "Gamma") {
    tf <- tmb_fit(f, d, family = fam)
    rec$glmmTMB <- tmb_record(tf, "Gamma")
  } else {
    rec$glmmTMB <- list(error = tryCatch({ glmmTMB(f, data = d, family = fam); "no error" },
                                         error = function(e) conditionMessage(e)),
                        note = "glmmTMB 1.1.5 has no inverse Gaussian family")
  }
  if (cs$laplace) {
    X <- getME(m, "X"); y <- d[[all.vars(f)[1]]]; g <- d[[all.vars(f)[length(all.vars(f))]]]
    p <- ncol(X)
    ## start: glmmTMB's optimum where there is one, otherwise lme4's
    start <- if (!is.null(rec$glmmTMB$beta))
      c(unlist(rec$glmmTMB$beta), log(rec$glmmTMB$varcorr[[1]]$sd[[1]]), 2 * log(rec$glmmTMB$sigma))
    else c(fixef(m), log(getME(m, "theta")), 2 * log(sigma(m)))
    lf <- laplace_fit(y, X, g, cs$family, cs$link, start, "observed")
    rec$laplace <- laplace_record(lf, cs$family)
    lfe <- laplace_fit(y, X, g, cs$family, cs$link, lf$par, "expected")
    rec$laplace_expected <- laplace_record(lfe, cs$family)
    ## lme4's estimates under the true Laplace likelihood: with sd = theta
    ## (the SD on the linear-predictor scale that lme4's objective uses) or
    ## with lme4's VarCorr SD (theta * sigma), and phi profiled or = sigma^2
    th <- getME(m, "theta")[[1]]; s4 <- sigma(m)
    at <- function(sd, phi) as.numeric(laplace_dev(fixef(m), sd, phi, y, X, g, cs$family, cs$link))
    prof_phi <- function(sd) optimize(function(lp) at(sd, exp(lp)), c(log(lf$phi) - 3, log(lf$phi) + 3),
                                      tol = 1e-12)$objective
    ## lme4's own objective at the Laplace maximum (lme4's theta = the sd)
    df4 <- glmer(f, data = d, family = fam, control = GLMER_TIGHT, devFunOnly = TRUE)
    rec$lme4_vs_laplace <- list(
      laplace_max_minus2logLik = lf$minus2logLik,
      laplace_sd = lf$sd, laplace_sigma = sqrt(lf$phi),
      lme4_theta = th, lme4_sigma = s4, lme4_varcorr_sd = th * s4,
      lme4_minus2logLik_reported = -2 * as.numeric(logLik(m)),
      laplace_at_lme4_beta_theta_phi_profiled = prof_phi(th),
      laplace_at_lme4_beta_theta_sigma2 = at(th, s4^2),
      laplace_at_lme4_beta_varcorrsd_phi_profiled = prof_phi(th * s4),
      lme4_devfun_at_lme4_optimum = df4(c(th, fixef(m))),
      lme4_devfun_at_laplace_max = df4(c(lf$sd, lf$beta)),
      note = paste("All values are -2 log L.  lme4's optimisation variable theta is the random-effect SD on",
                   "the linear-predictor scale (b = theta u, u ~ N(0, 1)), but VarCorr() and print() report",
                   "theta * sigma(fit) because the family has a scale (useSc), so the printed SD is smaller",
                   "by the factor sigma.  lme4's objective also differs from the Laplace likelihood: the",
                   "conditional modes come from PIRLS on deviance + |u|^2 (i.e. phi = 1), the log-determinant",
                   "uses the PIRLS (expected-information) weights without 1/phi, and the conditional",
                   "log-likelihood uses Gamma()$aic's dispersion dev/n plus its '+ 2'."))
  }
  rec
}

## ---------------------------------------------------------------------------
## Negative binomial
## ---------------------------------------------------------------------------
NB_CASES <- list(
  list(id = "nb_glmer_example", data = "nb_glmer_example", formula = "y ~ f1 * f2 + (1 | g)", laplace = TRUE,
       source = "lme4 ?glmer.nb example (set.seed(101)); the data have no random effect, so the fit is near the boundary"),
  list(id = "nb_sim", data = "nb_sim", formula = "z ~ x + (1 | f)", laplace = TRUE,
       source = "lme4 tests/nbinom.R simfun(), set.seed(102); glmmADMB gave theta 0.4487, beta (0.92871, 2.0507), logLik -2944.62"),
  list(id = "grouse_nb", data = "grouseticks", formula = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)", laplace = FALSE,
       source = "grouseticks (bundled), the Poisson case of glmer_reference.json as a negative binomial"),
  list(id = "epil_nb", data = "epil", formula = "y ~ Base * trt + Age + Visit + (Visit | subject)", laplace = FALSE,
       source = "lme4 tests/nbinom.R epilepsy example (MASS::epil); glmmADMB gave theta 7.4702, logLik -624.551")
)
## glmer.nb(tol = ) fails in lme4 1.1-31 (the tol argument is passed on to
## glmer(): "unused argument (tol = 1e-10)"), and lme4:::optTheta() with a
## tight PIRLS fails on grouseticks ("pwrssUpdate did not converge" at some
## theta of its wide search interval).  The tight fit therefore does what
## glmer.nb() does -- minimise -2 logLik over log(theta), refitting the GLMM at
## each theta -- by hand: optimize(tol = 1e-10) over log(theta_default) +- 0.5
## (theta_default from glmer.nb() with its defaults; the optimum must be
## inside), each point a fresh glmer(family = negative.binomial(theta)).
## PIRLS tolerance: lme4's NB PIRLS is Fisher scoring and converges linearly,
## so its -2 logLik is only as good as tolPwrss lets it be.  On nb_sim the
## optimum moves towards laplace_expected (the exact limit, below) as tolPwrss
## shrinks: max |beta - exact| 1.0e-4 at 1e-9, 1.6e-5 at 1e-11, 2.9e-6 at
## 1e-13; on grouseticks 1e-9 stops early (-2 logLik 1777.680978; 1e-11 and
## 1e-13 agree at 1777.681032-.681037).  So tolPwrss = 1e-13, falling back to
## 1e-11 and 1e-9 if any fit in the search fails (recorded).
NB_TOL <- 1e-10
nb_ctrl <- function(tp) glmerControl(tolPwrss = tp, optimizer = c("bobyqa", "bobyqa"),
                                     optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
nb_ctrl_text <- function(tp)
  paste0("optimize(tol = 1e-10) of -2 logLik over log(theta) in log(theta_default) +- 0.5, each a ",
         "glmer(family = MASS::negative.binomial(theta), control = glmerControl(tolPwrss = ", format(tp),
         ", optimizer = c('bobyqa', 'bobyqa'), optCtrl = list(rhoend = 1e-10, maxfun = 1e5)))")
glmer_nb_tight <- function(f, data, theta0) {
  for (tp in c(1e-13, 1e-11, 1e-9)) {
    nfail <- 0
    fit_at <- function(lt) glmer(f, data = data, family = MASS::negative.binomial(theta = exp(lt)), control = nb_ctrl(tp))
    obj <- function(lt) tryCatch(-2 * as.numeric(logLik(suppressWarnings(fit_at(lt)))),
                                 error = function(e) { nfail <<- nfail + 1; Inf })
    iv <- log(theta0) + c(-0.5, 0.5)
    o <- optimize(obj, iv, tol = NB_TOL)
    if (nfail > 0) next
    if (min(abs(o$minimum - iv)) < 1e-3) stop("theta at the edge of the search interval")
    m <- fit_at(o$minimum)
    attr(m, "control_text") <- nb_ctrl_text(tp)
    attr(m, "tolPwrss") <- tp
    return(m)
  }
  stop("PIRLS failed at every tolPwrss")
}
nb_record <- function(cs) {
  d <- get(cs$data)
  f <- as.formula(cs$formula)
  cap_def <- capture(eval(bquote(glmer.nb(.(f), data = .(as.name(cs$data)))), envir = globalenv()))
  m_def <- cap_def$value
  t0 <- proc.time()[["elapsed"]]
  cap <- capture(glmer_nb_tight(f, d, getME(m_def, "glmer.nb.theta")))
  t_tight <- proc.time()[["elapsed"]] - t0
  m <- cap$value
  rec <- list(data = DATA_PATH[[cs$data]], formula = cs$formula, source = cs$source,
              lme4 = c(lme4_record(m, cap, attr(m, "control_text")),
                       list(nb_theta = getME(m, "glmer.nb.theta"), tolPwrss = attr(m, "tolPwrss"),
                            seconds = t_tight)),
              lme4_default = c(lme4_record(m_def, cap_def, "glmer.nb() (defaults: tol = 5e-5, glmerControl())"),
                               list(nb_theta = getME(m_def, "glmer.nb.theta"))))
  tf <- tmb_fit(f, d, family = nbinom2)
  rec$glmmTMB <- tmb_record(tf, "nbinom2")
  if (cs$laplace) {
    X <- getME(m, "X"); y <- d[[all.vars(f)[1]]]; g <- d[[all.vars(f)[length(all.vars(f))]]]
    sd4 <- max(getME(m, "theta")[[1]], 1e-3)
    start <- c(fixef(m), log(sd4), log(getME(m, "glmer.nb.theta")))
    lfe <- laplace_fit(y, X, g, "nbinom2", "log", start, "expected")
    rec$laplace_expected <- laplace_record(lfe, "nbinom2")
    lfo <- laplace_fit(y, X, g, "nbinom2", "log", lfe$par, "observed")
    rec$laplace <- laplace_record(lfo, "nbinom2")
    rec$laplace_note <- paste("laplace_expected is lme4's Laplace (PIRLS weights in the determinant) and should",
                              "equal glmer.nb's optimum; laplace (observed information) is glmmTMB's.")
  }
  rec
}

## ---------------------------------------------------------------------------
## Ordinal: ordinal::clmm on wine
## ---------------------------------------------------------------------------
## clmm's own tolerances: the inner (conditional-mode) loop fails with
## gradTol below ~1e-8 ("iteration limit reached when updating the random
## effects") and the outer objective is then noisier; with gradTol = 1e-6
## and nlminb rel.tol = 1e-14 the estimates are stable to ~1e-6 (logit
## Laplace: logLik -81.565409292 at gradTol 1e-4 and 1e-6, -81.565412777 at
## 1e-8 with inner-loop warnings).  clmm's reported gradient is a finite
## difference (~1e-5).  wine_exact_ml below is an independent reference.
CLMM_TIGHT <- clmm.control(method = "nlminb", maxIter = 1000, gradTol = 1e-6, maxLineIter = 200,
                           rel.tol = 1e-14, eval.max = 1e4, iter.max = 1e4)
CLMM_TIGHT_TEXT <- paste("clmm.control(method = 'nlminb', maxIter = 1000, gradTol = 1e-6, maxLineIter = 200,",
                         "rel.tol = 1e-14, eval.max = 1e4, iter.max = 1e4)")
clmm_record <- function(link, nAGQ) {
  cap <- capture(clmm(rating ~ temp + contact + (1 | judge), data = wine, link = link, nAGQ = nAGQ,
                      control = CLMM_TIGHT))
  m <- cap$value
  m_def <- clmm(rating ~ temp + contact + (1 | judge), data = wine, link = link, nAGQ = nAGQ)
  s <- summary(m)
  re <- ranef(m, condVar = TRUE)
  l <- logLik(m)
  list(data = DATA_PATH$wine, formula = "rating ~ temp + contact + (1 | judge)", link = link, nAGQ = nAGQ,
       control = CLMM_TIGHT_TEXT,
       logLik = as.numeric(l), logLik_df = attr(l, "df"), AIC = AIC(m), BIC = BIC(m),
       thresholds = named(m$alpha), beta = named(m$beta),
       coef_table = df_rows(s$coefficients, "term"),
       vcov = named_matrix(vcov(m)),
       judge_sd = unname(m$ST$judge[1, 1]), judge_var = unname(m$ST$judge[1, 1]^2),
       ranef_judge = arr(re$judge[, 1]), condVar_judge = arr(attr(re$judge, "condVar") %||% condVar(m)$judge[, 1]),
       max_abs_gradient = max(abs(m$gradient)), condHess = m$condHess,
       default_fit = list(logLik = as.numeric(logLik(m_def)), thresholds = named(m_def$alpha),
                          beta = named(m_def$beta), judge_sd = unname(m_def$ST$judge[1, 1]),
                          max_abs_gradient = max(abs(m_def$gradient))),
       fit_warnings = arr(cap$warnings),
       parametrisation = paste("logit P(rating <= j) = theta_j - (beta_warm * temp + beta_yes * contact + u_judge),",
                               "u_judge ~ N(0, judge_sd^2); thresholds named '1|2', ..., '4|5'"))
}
## The exact marginal likelihood of the cumulative link model with a judge
## intercept, P(rating <= j | u) = F(theta_j - x'beta - u), u ~ N(0, s^2),
## integrated per judge by stats::integrate (rel.tol 1e-12), maximised over
## (theta, beta, log s) by nlminb + Newton steps with numDeriv derivatives.
## This is what clmm's AGQ approximates, and what a flat-prior posterior mode
## would be.
exact_clmm <- function(link, start) {
  Fc <- switch(link, logit = plogis, probit = pnorm)
  X <- model.matrix(~ temp + contact, wine)[, -1, drop = FALSE]
  y <- as.integer(wine$rating); J <- 5L
  g <- as.integer(wine$judge); ng <- max(g)
  nll <- function(par) {
    th <- c(-Inf, par[1:(J - 1)], Inf); beta <- par[J:(J + 1)]; s <- exp(par[J + 2])
    if (any(diff(th) <= 0)) return(Inf)
    eta <- drop(X %*% beta)
    tot <- 0
    for (i in seq_len(ng)) {
      k <- g == i
      lo <- th[y[k]]; hi <- th[y[k] + 1]; e <- eta[k]
      fi <- function(u) vapply(u, function(uu) exp(sum(log(Fc(hi - e - uu) - Fc(lo - e - uu)))), 0) * dnorm(u, 0, s)
      tot <- tot + log(integrate(fi, -Inf, Inf, rel.tol = 1e-12, abs.tol = 0, subdivisions = 1000L)$value)
    }
    -tot
  }
  o <- nlminb(start, nll, control = list(rel.tol = 1e-15, eval.max = 5000, iter.max = 5000))
  par <- o$par; gbest <- max(abs(grad(nll, par)))
  for (k in 1:10) {
    cand <- par - solve(hessian(nll, par), grad(nll, par))
    gc <- max(abs(grad(nll, cand)))
    if (!is.finite(gc) || gc >= gbest) break
    par <- cand; gbest <- gc
    if (gbest < 1e-9) break
  }
  H <- hessian(nll, par)
  V <- solve(H)
  nm <- c("1|2", "2|3", "3|4", "4|5", "tempwarm", "contactyes", "log_judge_sd")
  names(par) <- nm; dimnames(V) <- list(nm, nm)
  list(data = DATA_PATH$wine, formula = "rating ~ temp + contact + (1 | judge)", link = link,
       method = "exact marginal likelihood (stats::integrate per judge), maximised here",
       logLik = -nll(par), thresholds = named(par[1:4]), beta = named(par[5:6]), judge_sd = exp(par[[7]]),
       se = named(sqrt(diag(V))), vcov = named_matrix(V), max_abs_gradient = gbest)
}
clm_record <- function(link) {
  m <- clm(rating ~ temp + contact, data = wine, link = link)
  l <- logLik(m)
  list(data = DATA_PATH$wine, formula = "rating ~ temp + contact", link = link,
       logLik = as.numeric(l), thresholds = named(m$alpha), beta = named(m$beta),
       coef_table = df_rows(summary(m)$coefficients, "term"), max_abs_gradient = max(abs(m$gradient)))
}

## ---------------------------------------------------------------------------
## Run
## ---------------------------------------------------------------------------
cat("== Gamma ==\n")
GAMMA <- list()
for (cs in GAMMA_CASES) { cat(" ", cs$id, "\n"); GAMMA[[cs$id]] <- gamma_record(cs) }
cat("== inverse Gaussian ==\n")
IG <- list()
for (cs in IG_CASES) { cat(" ", cs$id, "\n"); IG[[cs$id]] <- gamma_record(cs) }
cat("== negative binomial ==\n")
NB <- list()
for (cs in NB_CASES) { cat(" ", cs$id, "\n"); NB[[cs$id]] <- safely(nb_record(cs)) }
cat("== ordinal ==\n")
ORD <- list(wine_clmm_logit = clmm_record("logit", 1L), wine_clmm_probit = clmm_record("probit", 1L),
            wine_clmm_logit_agq10 = clmm_record("logit", 10L), wine_clmm_probit_agq10 = clmm_record("probit", 10L),
            wine_clm_logit = clm_record("logit"), wine_clm_probit = clm_record("probit"))
for (link in c("logit", "probit")) {
  r <- ORD[[paste0("wine_clmm_", link, "_agq10")]]
  ORD[[paste0("wine_exact_ml_", link)]] <- exact_clmm(link, c(unlist(r$thresholds), unlist(r$beta), log(r$judge_sd)))
}

res <- list(
  meta = list(
    R_version = R.version.string,
    packages = list(lme4 = as.character(packageVersion("lme4")),
                    glmmTMB = as.character(packageVersion("glmmTMB")),
                    TMB = as.character(packageVersion("TMB")),
                    ordinal = as.character(packageVersion("ordinal")),
                    MASS = as.character(packageVersion("MASS")),
                    numDeriv = as.character(packageVersion("numDeriv")),
                    Matrix = as.character(packageVersion("Matrix")),
                    jsonlite = as.character(packageVersion("jsonlite"))),
    date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
    command = COMMAND, platform = R.version$platform, file = "families_reference.json",
    glmer_control = GLMER_TIGHT_TEXT, glmer_nb_theta_tol = NB_TOL, glmmTMB_control = TMB_TIGHT_TEXT,
    clmm_control = CLMM_TIGHT_TEXT,
    laplace = paste("laplace_* in make_families.R: independent one-dimensional Laplace per group, maximised",
                    "by nlminb + Newton steps with numDeriv derivatives; 'observed' = glmmTMB's Laplace,",
                    "'expected' = lme4's determinant")),
  gamma = GAMMA,
  inverse_gaussian = IG,
  negative_binomial = NB,
  ordinal = ORD
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE), OUT,
           useBytes = TRUE)
cat("wrote", OUT, "\n")

## ---------------------------------------------------------------------------
## Summary
## ---------------------------------------------------------------------------
cat("\n== Gamma / inverse Gaussian: -2 log L (Laplace maximum vs lme4) ==\n")
for (id in c(names(GAMMA), names(IG))) {
  r <- c(GAMMA, IG)[[id]]
  v <- r$lme4_vs_laplace
  cat(sprintf("%-26s TMB %s  laplace %s  | lme4: theta %.5f sigma %.5f printed SD %.5f; Laplace max sd %s sigma %s\n",
              id, if (is.null(r$glmmTMB$minus2logLik)) "        NA" else sprintf("%.8f", r$glmmTMB$minus2logLik),
              if (is.null(v)) "NA" else sprintf("%.8f", v$laplace_max_minus2logLik),
              r$lme4$theta[[1]], r$lme4$sigma, r$lme4$theta[[1]] * r$lme4$sigma,
              if (is.null(v)) "NA" else sprintf("%.5f", v$laplace_sd),
              if (is.null(v)) "NA" else sprintf("%.5f", v$laplace_sigma)))
  if (!is.null(v))
    cat(sprintf("%26s laplace at lme4 (theta, phi prof) %.6f (+%.4f) at (theta, sigma^2) %.6f; lme4 devfun own %.6f at Laplace max %.6f\n",
                "", v$laplace_at_lme4_beta_theta_phi_profiled, v$laplace_at_lme4_beta_theta_phi_profiled - v$laplace_max_minus2logLik,
                v$laplace_at_lme4_beta_theta_sigma2, v$lme4_devfun_at_lme4_optimum, v$lme4_devfun_at_laplace_max))
}
cat("\n== negative binomial ==\n")
for (id in names(NB)) {
  r <- NB[[id]]
  if (!is.null(r$error)) { cat(id, "ERROR", r$error, "\n"); next }
  cat(sprintf("%-18s glmer.nb tight: -2LL %.8f theta %.6f | default -2LL %.8f theta %.6f | TMB -2LL %.8f theta %.6f%s\n",
              id, r$lme4$minus2logLik, r$lme4$nb_theta, r$lme4_default$minus2logLik, r$lme4_default$nb_theta,
              r$glmmTMB$minus2logLik, r$glmmTMB$nb_theta,
              if (is.null(r$laplace)) "" else sprintf(" | laplace exp %.8f theta %.6f obs %.8f theta %.6f",
                                                       r$laplace_expected$minus2logLik, r$laplace_expected$nb_theta,
                                                       r$laplace$minus2logLik, r$laplace$nb_theta)))
}
cat("\n== ordinal ==\n")
for (id in names(ORD)) cat(sprintf("%-24s logLik %.8f  max|grad| %.2e\n", id, ORD[[id]]$logLik, ORD[[id]]$max_abs_gradient))
