## =============================================================================
## make_issue15_extra.R -- lme4's order of random-effects terms, VarCorr names,
## the offset= argument and unparenthesised bars
## =============================================================================
##
## Reference numbers for the rest of issue 15 (tests/design/test_term_order.py,
## tests/design/test_offset_arg.py, tests/formula/test_grammar.py's fits):
##
##   term_order  simulated data (factors a, b of 10 levels, c of 20, d of 10):
##               formulas whose terms lme4 1.1-31's mkReTrms reorders
##               (rev(order(nl)) when any(diff(nl) > 0)) or keeps; theta names
##               and values, VarCorr (grp, var1, var2, sdcor: make.names(unique =
##               TRUE) when a factor has several terms), ranef column names,
##               REML criterion (tight)
##   offset      lmer and glmer with lme4's offset= argument (numbers and an
##               expression of columns), alone and added to offset() terms
##   bare_bar    `Reaction ~ Days + 1|Subject` and `Reaction ~ Days||Subject`
##               (R's '|' binds more loosely than '+')
##
## Data written to tests/reference/data/issue15extra_*.csv. Run from the repository root:
##   Rscript tests/reference/make_issue15_extra.R
## =============================================================================

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
if (!file.exists("hierbayes/datasets/data/sleepstudy.csv"))
  stop("run from the repository root: Rscript tests/reference/make_issue15_extra.R")

named <- function(x) stats::setNames(as.list(unname(as.vector(x))), names(x))
arr <- function(x) I(unname(as.vector(x)))
DATA <- "tests/reference/data"
TIGHT <- lmerControl(optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_abs = 1e-12, xtol_rel = 1e-12,
                                    maxeval = 1e5))
GTIGHT <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5), tolPwrss = 1e-12)

vc_rows <- function(m) {
  v <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(v)), function(i) list(grp = v$grp[i], var1 = if (is.na(v$var1[i])) NULL else v$var1[i],
                                            var2 = if (is.na(v$var2[i])) NULL else v$var2[i], sdcor = v$sdcor[i]))
}
fit_record <- function(m) {
  list(formula = paste(deparse(formula(m)), collapse = " "),
       criterion = if (isGLMM(m)) -2 * as.numeric(logLik(m)) else if (isREML(m)) REMLcrit(m) else deviance(m),
       theta = named(getME(m, "theta")), fixef = named(fixef(m)),
       sigma = if (isGLMM(m)) NULL else sigma(m),
       varcorr = vc_rows(m), ranef_terms = lapply(ranef(m), names),
       fitted_head = arr(head(fitted(m), 6)))
}

## --- term order ---------------------------------------------------------------------------------
set.seed(15)
n <- 400
d <- data.frame(a = factor(sprintf("a%02d", sample(rep(1:10, 40)))),
                b = factor(sprintf("b%02d", sample(rep(1:10, 40)))),
                c = factor(sprintf("c%02d", sample(rep(1:20, 20)))),
                x = round(rnorm(n), 4), z = round(runif(n), 4))
ua <- matrix(rnorm(20), 10); ub <- rnorm(10); uc <- rnorm(20)
d$y <- round(1 + 0.5 * d$x + ua[as.integer(d$a), 1] * 0.8 + ua[as.integer(d$a), 2] * 0.4 * d$x +
             0.6 * ub[as.integer(d$b)] + 0.7 * uc[as.integer(d$c)] + 0.3 * d$z * rnorm(10)[as.integer(d$b)] +
             rnorm(n, sd = 0.7), 4)
write.csv(d, file.path(DATA, "issue15extra_terms.csv"), row.names = FALSE)
term_formulas <- c(
  reordered_doublebar = "y ~ x + (x || a) + (1 | c)",
  kept_doublebar = "y ~ x + (1 | c) + (x || a)",
  kept_two_terms = "y ~ x + (1 | a) + (0 + x | a)",
  three_factors = "y ~ x + (1 | a) + (1 | b) + (1 | c)",
  tie_reversed = "y ~ x + (1 | a) + (1 | b) + (z | c)",
  doublebar_interaction = "y ~ x + (x || a) + (x || a:c)",
  interleaved = "y ~ x + (1 | a) + (1 | b) + (0 + x | a)"
)
term_order <- lapply(term_formulas, function(f) {
  m <- lmer(as.formula(f), d, control = TIGHT)
  c(fit_record(m), list(cnms = lapply(m@cnms, identity), cnms_names = names(m@cnms)))
})

## --- offset= ------------------------------------------------------------------------------------
sleep <- read.csv("hierbayes/datasets/data/sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject)
offset <- list(
  lmer_numbers = fit_record(lmer(Reaction ~ Days + (Days | Subject), sleep, offset = 10 * sleep$Days,
                                 control = TIGHT)),
  lmer_both = fit_record(lmer(Reaction ~ Days + (Days | Subject) + offset(5 * Days), sleep, offset = Days^2,
                              control = TIGHT))
)
set.seed(150)
g <- factor(sprintf("g%02d", rep(1:12, each = 8)))
pc <- data.frame(g = g, x = round(rnorm(96), 4), expo = round(runif(96, 0.5, 5), 3))
pc$y <- rpois(96, pc$expo * exp(0.3 + 0.4 * pc$x + rnorm(12, sd = 0.5)[as.integer(g)]))
write.csv(pc, file.path(DATA, "issue15extra_counts.csv"), row.names = FALSE)
offset$glmer_expression <- fit_record(glmer(y ~ x + (1 | g), pc, poisson, offset = log(expo), control = GTIGHT))
offset$glmer_both <- fit_record(glmer(y ~ x + (1 | g) + offset(0.5 * log(expo)), pc, poisson,
                                      offset = 0.5 * log(expo), control = GTIGHT))

## --- unparenthesised bars -----------------------------------------------------------------------
bare_bar <- list(
  slope = fit_record(lmer(Reaction ~ Days + 1 | Subject, sleep, control = TIGHT)),
  doublebar = fit_record(lmer(Reaction ~ Days || Subject, sleep, control = TIGHT))
)

res <- list(
  meta = list(R_version = R.version.string,
              packages = list(lme4 = as.character(packageVersion("lme4")),
                              Matrix = as.character(packageVersion("Matrix")),
                              jsonlite = as.character(packageVersion("jsonlite"))),
              date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
              command = "Rscript tests/reference/make_issue15_extra.R",
              tight = "lmerControl(optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_abs = 1e-12, xtol_rel = 1e-12)); glmerControl(optimizer = 'bobyqa', rhoend = 1e-12, tolPwrss = 1e-12)",
              platform = R.version$platform, file = "issue15_extra_reference.json"),
  data = list(terms = file.path(DATA, "issue15extra_terms.csv"), counts = file.path(DATA, "issue15extra_counts.csv")),
  term_order = term_order, offset = offset, bare_bar = bare_bar
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE),
           "tests/reference/issue15_extra_reference.json")
cat("wrote tests/reference/issue15_extra_reference.json\n")
