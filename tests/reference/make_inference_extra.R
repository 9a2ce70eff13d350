## =============================================================================
## make_inference_extra.R -- extra R numbers for tests/inference (issue 3)
## =============================================================================
## Writes tests/reference/inference_extra_reference.json with what
## inference_reference.json (make_references.R) does not have:
##   * anova tables with multi-df terms (a 3-level factor, a factor x numeric
##     interaction): lmerTest types 1 and 3, Satterthwaite and Kenward-Roger,
##     and the Satterthwaite / KR coefficient tables of the same fits;
##   * coefficient tables of a singular fit (dyestuff2: theta = 0);
##   * profile confidence intervals for models with two bars on one factor and
##     with crossed factors (sleep_zcp_reml, penicillin_reml), and the profile
##     zeta table of dyestuff_reml (as.data.frame(profile(m))).
## Run from the repository root:  Rscript tests/reference/make_inference_extra.R
## Same conventions as make_references.R (see tests/reference/README.md).
## =============================================================================
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)
})
if (!file.exists("hierbayes/datasets/data/sleepstudy.csv"))
  stop("run from the repository root")

df_rows <- function(df, key = "term") {
  df <- as.data.frame(df, check.names = FALSE)
  lapply(seq_len(nrow(df)), function(i)
    c(setNames(list(rownames(df)[i]), key), lapply(df[i, , drop = FALSE], function(v) unname(v[[1]]))))
}
ci_rows <- function(ci) lapply(seq_len(nrow(ci)), function(i)
  list(term = rownames(ci)[i], lower = unname(ci[i, 1]), upper = unname(ci[i, 2])))
quiet <- function(expr) suppressMessages(suppressWarnings(expr))

tr <- read.csv("tests/reference/data/sim_transforms.csv")
tr$g <- factor(tr$g); tr$k <- factor(tr$k)
sleep <- read.csv("hierbayes/datasets/data/sleepstudy.csv"); sleep$Subject <- factor(sleep$Subject)
pen <- read.csv("hierbayes/datasets/data/penicillin.csv")
pen$plate <- factor(pen$plate); pen$sample <- factor(pen$sample)
dye <- read.csv("hierbayes/datasets/data/dyestuff.csv"); dye$Batch <- factor(dye$Batch)

anova_cases <- list(
  sim_transforms_reml = list(data = "tests/reference/data/sim_transforms.csv",
                             formula = "y ~ log(x) + scale(z) + I(x^2) + k + (1|g)",
                             py_formula = "y ~ log(x) + scale(z) + I(x**2) + k + (1|g)"),
  sim_kz_reml = list(data = "tests/reference/data/sim_transforms.csv",
                     formula = "y ~ k * z + (1|g)", py_formula = NULL))
out_anova <- list()
for (id in names(anova_cases)) {
  cs <- anova_cases[[id]]
  m <- quiet(lmerTest::lmer(as.formula(cs$formula), data = tr, REML = TRUE))
  out_anova[[id]] <- c(cs[c("data", "formula")], list(py_formula = cs$py_formula, REML = TRUE,
    coef_satterthwaite = df_rows(summary(m, ddf = "Satterthwaite")$coefficients),
    coef_kenward_roger = df_rows(summary(m, ddf = "Kenward-Roger")$coefficients),
    anova_type3_satterthwaite = df_rows(anova(m, type = 3, ddf = "Satterthwaite")),
    anova_type1_satterthwaite = df_rows(anova(m, type = 1, ddf = "Satterthwaite")),
    anova_type3_kenward_roger = df_rows(anova(m, type = 3, ddf = "Kenward-Roger")),
    anova_type1_kenward_roger = df_rows(anova(m, type = 1, ddf = "Kenward-Roger"))))
}

d2 <- read.csv("tests/reference/data/dyestuff2.csv"); d2$Batch <- factor(d2$Batch)
m <- quiet(lmerTest::lmer(Yield ~ 1 + (1|Batch), data = d2, REML = TRUE))
out_anova$dyestuff2_reml <- list(data = "tests/reference/data/dyestuff2.csv", formula = "Yield ~ 1 + (1|Batch)",
  py_formula = NULL, REML = TRUE,
  coef_satterthwaite = df_rows(summary(m, ddf = "Satterthwaite")$coefficients),
  coef_kenward_roger = df_rows(summary(m, ddf = "Kenward-Roger")$coefficients))

profile_cases <- list(
  sleep_zcp_reml = list(data = "hierbayes/datasets/data/sleepstudy.csv",
                        formula = "Reaction ~ Days + (Days||Subject)", df = sleep),
  penicillin_reml = list(data = "hierbayes/datasets/data/penicillin.csv",
                         formula = "diameter ~ 1 + (1|plate) + (1|sample)", df = pen))
out_profile <- list()
for (id in names(profile_cases)) {
  cs <- profile_cases[[id]]
  m <- lme4::lmer(as.formula(cs$formula), data = cs$df, REML = TRUE)
  out_profile[[id]] <- list(data = cs$data, formula = cs$formula, REML = TRUE,
                            confint_profile = list(level = 0.95, rows = ci_rows(quiet(confint(m)))))
}
m <- lme4::lmer(Yield ~ 1 + (1|Batch), data = dye, REML = TRUE)
pr <- as.data.frame(profile(m))
out_profile$dyestuff_reml <- list(
  data = "hierbayes/datasets/data/dyestuff.csv", formula = "Yield ~ 1 + (1|Batch)", REML = TRUE,
  profile_table = lapply(seq_len(nrow(pr)), function(i)
    list(.par = as.character(pr$.par[i]), .zeta = pr$.zeta[i], .sig01 = pr$.sig01[i],
         .sigma = pr$.sigma[i], `(Intercept)` = pr$`(Intercept)`[i])))

meta <- list(R_version = R.version.string,
             packages = lapply(c(lme4 = "lme4", lmerTest = "lmerTest", pbkrtest = "pbkrtest",
                                 Matrix = "Matrix", jsonlite = "jsonlite"),
                               function(p) as.character(packageVersion(p))),
             date = format(Sys.time(), tz = "UTC", usetz = TRUE),
             command = "Rscript tests/reference/make_inference_extra.R",
             platform = R.version$platform, file = "inference_extra_reference.json")
writeLines(toJSON(list(meta = meta, anova_cases = out_anova, profile_cases = out_profile),
                  auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE),
           "tests/reference/inference_extra_reference.json")
cat("wrote tests/reference/inference_extra_reference.json\n")
