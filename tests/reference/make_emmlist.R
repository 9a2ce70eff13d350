## =============================================================================
## make_emmlist.R -- emmeans' two-sided specs, pairs() and lmer.df as R users write them
## =============================================================================
## Reference numbers for tests/interpret/test_emmlist.py:
##   oats   lmer(yield ~ Variety * nitro + (1 | Block/Variety)) (nitro numeric):
##          emmeans(m, pairwise ~ Variety, lmer.df = "satterthwaite") ($emmeans, $contrasts),
##          emmeans(m, trt.vs.ctrl ~ Variety, adjust = "holm")$contrasts,
##          pairs(emmeans(m, "Variety"), reverse = TRUE),
##          emtrends(m, pairwise ~ Variety, var = "nitro")$contrasts
##   cbpp   glmer binomial (tightly converged): emmeans(g, pairwise ~ period, type = "response")$contrasts
## Run from the repository root:  Rscript tests/reference/make_emmlist.R
## =============================================================================
suppressPackageStartupMessages({
  library(lme4)
  library(emmeans)
  library(jsonlite)
})
if (!file.exists("hierbayes/datasets/data/oats.csv"))
  stop("run from the repository root: Rscript tests/reference/make_emmlist.R")
tab <- function(x) {
  d <- as.data.frame(summary(x))
  lapply(d, function(col) if (is.factor(col)) as.character(col) else col)
}
oats <- read.csv("hierbayes/datasets/data/oats.csv")
oats$Variety <- factor(oats$Variety)
oats$Block <- factor(oats$Block)
m <- lmer(yield ~ Variety * nitro + (1 | Block/Variety), oats)
both <- emmeans(m, pairwise ~ Variety, lmer.df = "satterthwaite")
cbpp <- read.csv("hierbayes/datasets/data/cbpp.csv")
cbpp$period <- factor(cbpp$period)
# tightly converged: glmer's default stops early and its Hessian-based SEs move with it (docs/glmer-precision.md)
g <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial,
           control = glmerControl(tolPwrss = 1e-12, optimizer = c("bobyqa", "bobyqa"),
                                  optCtrl = list(rhoend = 1e-10, maxfun = 1e5)))
res <- list(
  meta = list(R_version = R.version.string,
              packages = list(lme4 = as.character(packageVersion("lme4")),
                              emmeans = as.character(packageVersion("emmeans")),
                              pbkrtest = as.character(packageVersion("pbkrtest")),
                              jsonlite = as.character(packageVersion("jsonlite"))),
              date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
              command = "Rscript tests/reference/make_emmlist.R",
              platform = R.version$platform, file = "emmlist_reference.json"),
  oats_pairwise_satt = list(emmeans = tab(both$emmeans), contrasts = tab(both$contrasts)),
  oats_trt_holm = tab(emmeans(m, trt.vs.ctrl ~ Variety, adjust = "holm")$contrasts),
  oats_pairs_reverse = tab(pairs(emmeans(m, "Variety"), reverse = TRUE)),
  oats_trends_pairwise = tab(emtrends(m, pairwise ~ Variety, var = "nitro")$contrasts),
  cbpp_pairwise_response = tab(emmeans(g, pairwise ~ period, type = "response")$contrasts)
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE),
           "tests/reference/emmlist_reference.json")
cat("wrote tests/reference/emmlist_reference.json\n")
