//! `report.md`, rendered from the report's JSON value alone, and the Method paragraph.

use std::fmt::Write as _;

use serde_json::Value;

use super::comparisons::MEASURES;
use super::doc::{Comparison, Family, FamilyName, Kind, Method, ReportDoc, TrainingVarianceNote};
use crate::config::Config;

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn points(x: f64) -> String {
    format!("{:+.1}", 100.0 * x)
}

/// A p-value to three decimals, with more where three would print it equal to alpha (a
/// resolved q = 0.0496 must not read "0.050").
fn p_value(p: f64, alpha: f64) -> String {
    if p < 0.001 {
        return "<0.001".to_owned();
    }
    let shown = |digits: usize| format!("{p:.digits$}");
    (3..8).find(|&d| shown(d) != format!("{alpha:.d$}")).map_or_else(|| shown(8), shown)
}

/// A difference in its units: accuracy in points, diversity as measured.
fn amount(c: &Comparison, x: f64) -> String {
    match c.kind {
        Kind::Accuracy => points(x),
        Kind::Diversity => format!("{x:+.1}"),
    }
}

fn interval(c: &Comparison) -> String {
    match (c.interval, c.interval_confidence) {
        (Some([lo, hi]), Some(conf)) => {
            format!("{} [{}, {}] ({:.1}%)", amount(c, c.estimate), amount(c, lo), amount(c, hi), 100.0 * conf)
        }
        _ => format!("{} (n/a)", amount(c, c.estimate)),
    }
}

fn adjusted_name(c: &Comparison) -> &'static str {
    match c.family {
        FamilyName::Primary => "Holm p",
        FamilyName::Exploratory => "q",
    }
}

fn verdict(c: &Comparison) -> String {
    match (c.p, c.family) {
        (None, _) => "not tested".into(),
        (Some(_), FamilyName::Primary) => {
            if c.resolved {
                "**resolved**".into()
            } else {
                "not resolved".into()
            }
        }
        (Some(_), FamilyName::Exploratory) => {
            if c.resolved {
                "resolved (exploratory)".into()
            } else {
                "not resolved".into()
            }
        }
    }
}

/// One comparison in a cell: difference, interval, p, adjusted p, decision.
fn cell(c: &Comparison, alpha: f64) -> String {
    match (c.p, c.p_adjusted) {
        (Some(p), Some(q)) => format!(
            "{}, p={}, {}={}: {}{}",
            interval(c),
            p_value(p, alpha),
            adjusted_name(c),
            p_value(q, alpha),
            verdict(c),
            if c.training_variance == TrainingVarianceNote::NotEstimable { "¹" } else { "" }
        ),
        _ => format!("{}: {}", interval(c), c.note.as_deref().unwrap_or("not tested")),
    }
}

fn find<'a>(doc: &'a ReportDoc, id: &str) -> Option<&'a Comparison> {
    doc.comparisons.iter().find(|c| c.id == id)
}

/// A measured value with its interval; the value alone when it has none (fewer than two
/// conversations).
fn with_ci(v: &Value) -> Option<String> {
    let value = v["value"].as_f64()?;
    Some(match (v["ci"][0].as_f64(), v["ci"][1].as_f64()) {
        (Some(lo), Some(hi)) => format!("{value:.1} [{lo:.1}, {hi:.1}]"),
        _ => format!("{value:.1} (no interval)"),
    })
}

fn accuracy_ci(accuracy: f64, ci: [f64; 2]) -> String {
    format!("{} [{}, {}]", pct(accuracy), pct(ci[0]), pct(ci[1]))
}

pub fn render(doc: &ReportDoc) -> String {
    let mut md = format!("# Report: run `{}`\n\n", doc.run);
    summary(doc, &mut md);
    let _ = writeln!(md, "## Method\n\n{}\n", doc.method.text);
    headline(doc, &mut md);
    accuracy_tables(doc, &mut md);
    grading(doc, &mut md);
    power(doc, &mut md);
    training_runs(doc, &mut md);
    training_data(doc, &mut md);
    funnel(doc, &mut md);
    let _ = writeln!(md, "## Wall time per stage\n\n| stage | seconds |\n|---|---:|");
    for (stage, seconds) in &doc.wall_seconds {
        let _ = writeln!(md, "| {stage} | {seconds:.1} |");
    }
    if !doc.plots.is_empty() {
        let _ = writeln!(md, "\n## Plots\n");
        for name in &doc.plots {
            let _ = writeln!(md, "![{name}]({name})");
        }
        let _ = writeln!(md, "\n(each also as SVG beside it)");
    }
    md
}

fn summary(doc: &ReportDoc, md: &mut String) {
    let m = &doc.method;
    let s = &doc.summary;
    let _ = writeln!(md, "## What this run resolves\n");
    if m.primary.size == 0 {
        let _ = writeln!(
            md,
            "No primary comparison was tested (the run has no Direct arm, baseline or `report.primary` entry to compare with).\n"
        );
    } else {
        let _ = writeln!(
            md,
            "Primary comparisons ({}; Holm over {} at alpha = {}):\n",
            m.primary.chosen_by, m.primary.size, m.alpha
        );
        for id in s.resolved.iter().chain(&s.not_resolved) {
            if let Some(c) = find(doc, id) {
                let _ = writeln!(md, "- `{id}`: {}", cell(c, m.alpha));
            }
        }
        if s.resolved.is_empty() {
            let _ = writeln!(
                md,
                "\n**None of the {} primary comparisons is resolved at this size.**",
                m.primary.size
            );
        } else {
            let _ = writeln!(
                md,
                "\n**Resolved: {} of {}** ({}).",
                s.resolved.len(),
                m.primary.size,
                s.resolved.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let _ = writeln!(
        md,
        "\nExploratory: {} more comparisons were tested (each benchmark on its own, against the baseline, diversity); {} of them have a Benjamini-Hochberg q below {}. They are leads for a next run, not findings of this one.{}\n",
        s.exploratory_looked_at,
        s.exploratory_resolved,
        m.alpha,
        match s.exploratory_untested {
            0 => String::new(),
            n => format!(" {n} more are shown but could not be tested (their notes say why)."),
        }
    );
    if !m.training_variance {
        let _ = writeln!(
            md,
            "¹ One training run per arm: the variance between training runs (a good or bad seed moves a whole model) cannot be estimated, so no interval or p-value here includes it, and \"resolved\" is far less safe than stated: in our simulation at the paper's sizes with a seed effect of ~1.5 points, one run per arm calls a single null comparison resolved 26% of the time (README, \"How the rule behaves\"). train.seeds with two or more seeds lets the report count it; three are the least we suggest.\n"
        );
    }
    // Pooling the run effect assumes the arms vary alike; say so loudly when they do not.
    for t in &m.training_runs {
        if let (crate::config::TrainingVarianceMode::Pooled, Some(b)) = (t.mode, &t.bartlett)
            && b.p < m.alpha
        {
            let _ = writeln!(
                md,
                "**Warning (`{}`):** the arms' training runs do not vary alike (Bartlett p = {}): the pooled run effect understates the variance of the most variable arms, and comparisons with them can read resolved too easily. `report.training_variance = \"per_comparison\"` does not assume it (see \"Training runs\" below).\n",
                t.student,
                p_value(b.p, m.alpha)
            );
        }
    }
}

/// The method's sentence on grading: who decides `correct`, in which version.
fn graders_text(config: &Config) -> String {
    let e = &config.evaluate;
    let label = crate::stages::grading::label(e);
    let extraction = e.extraction.as_str();
    match e.grader {
        crate::config::GraderChoice::Native => format!(
            "Answers are graded by our grader ({label}: math-verify's semantics re-implemented, answers read with the `{extraction}` extraction), not by the math-verify package; evaluate.grader = \"both\" grades with both and counts their disagreements."
        ),
        crate::config::GraderChoice::MathVerify => format!(
            "Answers are graded by the math-verify package itself ({label}, `verify(parse(\"$\" + gold + \"$\"), parse(response))` as the paper's harness calls it)."
        ),
        crate::config::GraderChoice::Both => format!(
            "Answers are graded by the math-verify package itself ({label}, `verify(parse(\"$\" + gold + \"$\"), parse(response))` as the paper's harness calls it) and by ours (the `{extraction}` extraction); accuracies and tests use math-verify's verdicts, and the Graders section counts where the two disagree."
        ),
    }
}

pub fn method(
    config: &Config,
    primary: Family,
    exploratory: Family,
    training_variance: bool,
    training_runs: Vec<super::doc::TrainingRuns>,
) -> Method {
    let r = &config.report;
    let alpha = r.alpha();
    let seeds = crate::stages::arms::seeds(config).len();
    let accuracy_test = "paired score test: z = (difference - d) / sqrt(V_problems(d) + V_training), V_problems the \
         paired per-problem variance about d (McNemar's asymptotic statistic for one benchmark and one run, with \
         Agresti & Min's half pseudo-count per discordant cell), V_training the run-to-run variance beyond \
         per-problem noise (a random effect of the training seed, method of moments, pooled over the student's \
         arms or the two compared arms' own: report.training_variance), Student's t with Satterthwaite degrees \
         of freedom"
        .to_owned();
    let accuracy_interval = "the inversion of the same test (every d it does not reject), at the level that agrees with the decision".to_owned();
    let diversity_test = format!(
        "difference of two independent sets' bootstrap estimates ({} replicates resampling generation conversations), normal reference with the bootstrap standard error",
        r.bootstrap_samples
    );
    let seeds_text = if training_variance {
        let how = match r.training_variance {
            crate::config::TrainingVarianceMode::Pooled => {
                "estimated from the seeds of all of the student's arms, assumed alike across arms: Bartlett's test of that is under Training runs, and report.training_variance = \"per_comparison\" drops it"
            }
            crate::config::TrainingVarianceMode::PerComparison => {
                "estimated from the two compared arms' own seeds, report.training_variance = \"per_comparison\": no assumption that the arms vary alike, few degrees of freedom"
            }
        };
        format!(
            "Each arm is trained with {seeds} seeds; a model's accuracy is the mean over its seeds, and the variance counts the problems and the training runs (how much a whole run moves beyond per-problem noise, {how})."
        )
    } else {
        "Each arm is trained once (one seed): the variance counts the problems and the per-problem noise between the two models, but not how much a whole training run moves with its seed, which one run cannot show; results flagged ¹ carry that caveat.".to_owned()
    };
    let text = format!(
        "Accuracy differences are paired (the same problems for both models). One rule decides each comparison: a \
         paired score test of \"no difference\" on the statistic as it is estimated (a benchmark's accuracy, or the \
         average as the mean of the benchmark means), whose variance about a hypothesised difference d is the paired \
         per-problem variance (for one benchmark and one run per model this is McNemar's asymptotic test, Fagerland \
         et al. 2013, with Agresti & Min's half pseudo-count in each discordant cell) plus a training-run term; the \
         reference is Student's t with Satterthwaite degrees of freedom. The interval shown is the set of differences \
         the same test does not reject, so it excludes 0 exactly when the comparison is resolved. {seeds_text} \
         Single accuracies carry Wilson intervals on the effective number of problems (a design-effect \
         adjustment; never of zero width). \
         Primary comparisons ({}, {} of them) are decided under Holm's procedure (family-wise error at most {alpha}); \
         their intervals are at the level Holm tested them (each at its step's level, not simultaneous intervals). \
         Every other comparison ({}) is exploratory, with Benjamini-Hochberg q-values (false discovery rate at most \
         {alpha}; comparisons that share an arm are not guaranteed the positive dependence that bound assumes) and \
         Benjamini-Yekutieli intervals at level 1 - R alpha / m (alpha / m when none is resolved). Diversity differences use bootstrap standard errors ({} replicates, resampling whole \
         generation conversations, since the items of one call are not independent) and a normal reference; no \
         diversity interval rests on fewer than two conversations. \"resolved\": the adjusted p-value is below {alpha}. \
         {}",
        primary.chosen_by,
        primary.size,
        exploratory.size,
        r.bootstrap_samples,
        graders_text(config),
    );
    Method {
        alpha,
        confidence: r.confidence,
        accuracy_test,
        accuracy_interval,
        diversity_test,
        primary,
        exploratory,
        training_variance,
        bootstrap_samples: r.bootstrap_samples,
        training_runs,
        text,
    }
}

fn headline(doc: &ReportDoc, md: &mut String) {
    if doc.headline.is_empty() {
        let _ = writeln!(
            md,
            "(No strategy-vs-Direct comparison: the run does not generate with `direct` and another strategy.)\n"
        );
        return;
    }
    for h in &doc.headline {
        let s = &h.strategy;
        let _ = writeln!(md, "## `{s}` vs `direct`, on the same items and problems\n");
        let _ = writeln!(
            md,
            "| measure | family | {s} | direct | difference [interval] (level), p, adjusted p: decision |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---|");
        for id in &h.diversity {
            let Some(c) = find(doc, id) else { continue };
            let set = c.items.as_deref().unwrap_or("all");
            let name = MEASURES.iter().find(|m| m.0 == c.measure).map_or(c.measure.as_str(), |m| m.1);
            let value = |origin: &str| {
                with_ci(
                    &doc.data.get(origin).map_or(Value::Null, |d| d["diversity"][set][&c.measure].clone()),
                )
                .unwrap_or_else(|| "n/a".into())
            };
            let _ = writeln!(
                md,
                "| {name}, {} items (n={}/{}) | {} | {} | {} | {} |",
                if set == "all" { "all generated" } else { "kept" },
                c.n.get("arm").copied().unwrap_or(0),
                c.n.get("against").copied().unwrap_or(0),
                c.family.as_str(),
                value(s),
                value("direct"),
                cell(c, doc.method.alpha)
            );
        }
        for id in &h.accuracy {
            let Some(c) = find(doc, id) else { continue };
            let student = c.student.as_deref().unwrap_or("");
            let benchmark = c.benchmark.as_deref().unwrap_or("average");
            let acc = |label: &str| {
                doc.students
                    .get(student)
                    .and_then(|rows| rows.iter().find(|r| r.data == label))
                    .and_then(|r| {
                        if benchmark == "average" { Some(&r.average) } else { r.benchmarks.get(benchmark) }
                    })
                    .map_or("n/a".to_owned(), |a| accuracy_ci(a.accuracy, a.ci))
            };
            let _ = writeln!(
                md,
                "| accuracy `{student}`, {} data, {benchmark} (%) | {} | {} | {} | {} |",
                c.curation.as_deref().unwrap_or(""),
                c.family.as_str(),
                acc(&c.arm),
                acc(&c.against),
                cell(c, doc.method.alpha)
            );
        }
        let _ = writeln!(
            md,
            "\nDiversity is measured on every item the generator produced (what the paper measures: dedup would erase the collapse) and on the items dedup kept; values carry {:.0}% percentile bootstrap intervals over generation conversations. Accuracy values carry Wilson intervals; differences are paired over the same problems, in points.\n",
            100.0 * doc.method.confidence
        );
    }
}

fn accuracy_tables(doc: &ReportDoc, md: &mut String) {
    for (student, rows) in &doc.students {
        let _ = writeln!(md, "## Accuracy: student `{student}`\n");
        let header: Vec<String> = doc.benchmarks.iter().map(|b| format!("{b} (%)")).collect();
        let _ = writeln!(
            md,
            "| data | {} | average (%) | seed spread | vs baseline (average, points) | vs direct (average, points) |",
            header.join(" | ")
        );
        let _ = writeln!(md, "|---|{}---:|---:|---|---|", "---:|".repeat(doc.benchmarks.len()));
        for row in rows {
            let cells: Vec<String> = doc
                .benchmarks
                .iter()
                .map(|b| {
                    row.benchmarks
                        .get(b)
                        .map_or("-".to_owned(), |a| format!("{} (n={})", accuracy_ci(a.accuracy, a.ci), a.n))
                })
                .collect();
            let comparison = |id: &Option<String>| {
                id.as_ref().and_then(|i| find(doc, i)).map_or(String::new(), |c| cell(c, doc.method.alpha))
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                row.data,
                cells.join(" | "),
                accuracy_ci(row.average.accuracy, row.average.ci),
                row.seed_spread.map_or("-".to_owned(), |s| format!(
                    "±{} ({} seeds)",
                    pct(s),
                    row.seeds.len()
                )),
                comparison(&row.vs_baseline),
                comparison(&row.vs_direct),
            );
        }
        let _ = writeln!(
            md,
            "\nAccuracy in %, greedy decoding, answers read with `evaluate.extraction = \"{}\"`; [low, high]: {:.0}% Wilson interval (effective number of problems; with several seeds it counts the training runs too); n: problems; the average is the mean of the benchmark means. Differences: see Method (interval level in parentheses; Holm p for primary comparisons, Benjamini-Hochberg q for exploratory ones).\n",
            doc.extraction.as_str().unwrap_or_default(),
            100.0 * doc.method.confidence,
        );
    }
}

/// With math-verify in use: each model's accuracy by each grader, their disagreements with a
/// few examples, and the cases math-verify gave no verdict on.
fn grading(doc: &ReportDoc, md: &mut String) {
    let g = &doc.grading;
    if g.models.is_empty() {
        return;
    }
    let both = g.grader == "both";
    let _ = writeln!(md, "## Graders: `{}`\n", g.label);
    let _ = writeln!(
        md,
        "Every accuracy and test above uses math-verify's verdict (as the paper reported).{}\n",
        if both { " Ours is beside it; a disagreement is a record the two decide differently." } else { "" }
    );
    if both {
        let _ = writeln!(
            md,
            "| student | model | records | math-verify % | ours % | disagree | share % | ours right only | math-verify right only | math-verify failed |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
    } else {
        let _ = writeln!(
            md,
            "| student | model | records | math-verify % | math-verify failed |\n|---|---|---:|---:|---:|"
        );
    }
    let opt = |x: Option<f64>| x.map_or("-".to_owned(), pct);
    for m in &g.models {
        if both {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                m.student,
                m.model,
                m.records,
                opt(m.math_verify_accuracy),
                opt(m.native_accuracy),
                m.disagreements,
                opt(m.disagreement_share),
                m.native_only,
                m.math_verify_only,
                m.failures
            );
        } else {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                m.student,
                m.model,
                m.records,
                opt(m.math_verify_accuracy),
                m.failures
            );
        }
    }
    let total: usize = g.models.iter().map(|m| m.disagreements).sum();
    let records: usize = g.models.iter().map(|m| m.records).sum();
    let failures: usize = g.models.iter().map(|m| m.failures).sum();
    if both {
        let _ = writeln!(
            md,
            "\nIn all: {total} of {records} records ({}%) graded differently.",
            pct(total as f64 / records.max(1) as f64)
        );
    }
    if failures > 0 {
        let _ = writeln!(
            md,
            "\n**math-verify gave no verdict on {failures} records** (it raised, timed out or crashed; counted wrong, as its `verify` does on a timeout):\n"
        );
        for m in g.models.iter().filter(|m| !m.failed.is_empty()) {
            for f in &m.failed {
                let _ = writeln!(md, "- {} / {}: {f}", m.student, m.model);
            }
        }
    }
    let examples: Vec<_> =
        g.models.iter().flat_map(|m| m.examples.iter().map(move |e| (m, e))).take(6).collect();
    if !examples.is_empty() {
        let _ = writeln!(md, "\nExamples of disagreement (gold; what each grader read and decided):\n");
        let code = |x: &Option<String>| {
            x.as_deref().map_or("nothing".to_owned(), |s| {
                format!("`{}`", s.chars().take(80).collect::<String>().replace('`', "'"))
            })
        };
        let mark = |ok: bool| if ok { "right" } else { "wrong" };
        for (m, e) in examples {
            let _ = writeln!(
                md,
                "- {} / {}, {} {}: gold `{}`; ours read {} ({}), math-verify read {} ({})",
                m.student,
                m.model,
                e.benchmark,
                e.id,
                e.gold.replace('`', "'"),
                code(&e.native_extracted),
                mark(e.native),
                code(&e.math_verify_extracted),
                mark(e.math_verify)
            );
        }
    }
    let _ = writeln!(md);
}

fn power(doc: &ReportDoc, md: &mut String) {
    if doc.power.is_empty() {
        return;
    }
    let m = doc.method.primary.size;
    let _ = writeln!(md, "## What the primary comparisons could detect\n");
    let _ = writeln!(
        md,
        "| comparison | sd of the difference (points) | df | detectable at {:.0}% power, Holm's first step (alpha/{m}) | at alpha | observed discordance |",
        100.0 * doc.power[0].power
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    for p in &doc.power {
        let _ = writeln!(
            md,
            "| `{}` | {:.2} | {} | {:.1} | {:.1} | {} |",
            p.comparison,
            100.0 * p.sd,
            p.df.map_or("normal".to_owned(), |d| format!("{d:.0}")),
            100.0 * p.detectable_first_step,
            100.0 * p.detectable_last_step,
            p.discordance.map_or("-".to_owned(), |d| format!("{}%", pct(d))),
        );
    }
    let _ = writeln!(
        md,
        "\nThe smallest true difference (points) each comparison would resolve with that probability, from the variance this run observed: a comparison with no resolved difference and a large detectable one says little either way. `pipeline validate` prints the same before a run, from assumptions (`report.power`).\n"
    );
}

fn training_runs(doc: &ReportDoc, md: &mut String) {
    let runs: Vec<&super::doc::TrainingRuns> =
        doc.method.training_runs.iter().filter(|t| t.pooled_run_sd.is_some()).collect();
    if runs.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Training runs
"
    );
    let _ = writeln!(
        md,
        "| student | run effect on the average, pooled (points) | df | each arm's own (points) | Bartlett p (arms vary alike) |"
    );
    let _ = writeln!(md, "|---|---:|---:|---|---:|");
    for t in runs {
        let arms: Vec<String> = t.arms.iter().map(|(arm, sd)| format!("{arm} {}", pct(*sd))).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            t.student,
            t.pooled_run_sd.map_or("-".to_owned(), pct),
            t.pooled_df.map_or("-".to_owned(), |d| format!("{d:.0}")),
            arms.join(", "),
            t.bartlett.as_ref().map_or("-".to_owned(), |b| p_value(b.p, doc.method.alpha)),
        );
    }
    let seeds = doc.train_seeds.len();
    let _ = writeln!(
        md,
        "\nThe standard deviation of a whole training run's average accuracy from its seed, beyond per-problem noise (method of moments; 0 when the runs differ no more than per-problem noise explains). With {seeds} seeds an arm's own estimate rests on {} degree(s) of freedom, so Bartlett's test has little power: a high p is weak evidence that the arms vary alike.\n",
        seeds.saturating_sub(1)
    );
}

fn training_data(doc: &ReportDoc, md: &mut String) {
    if doc.training_data.is_empty() {
        return;
    }
    let unit = doc.budget["unit"].as_str().unwrap_or("examples");
    let _ = writeln!(md, "## What each arm trained on\n");
    let _ = writeln!(
        md,
        "| student | arm | examples per run | supervised tokens per run | mean solution tokens | mean solver agreement | baseline accuracy on its problems (%) |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|");
    for t in &doc.training_data {
        let opt = |x: Option<f64>, digits: usize| x.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {} | {} | {} | {} |",
            t.student,
            t.arm,
            t.examples,
            opt(t.supervised_tokens, 0),
            opt(t.mean_solution_tokens, 1),
            opt(t.mean_agreement, 2),
            t.baseline_accuracy.as_ref().map_or("not measured".to_owned(), |a| format!(
                "{} (n={})",
                accuracy_ci(a.accuracy, a.ci),
                a.n
            )),
        );
    }
    let _ = writeln!(
        md,
        "\nBudget matched by {unit} within each curation, the subsample drawn per training seed (means over seeds). Solver agreement is the share of the solver's solutions in the winning answer class: curation keeps the problems the solver agrees on, which tend to be easier, so an arm's gain may come with easier training data. The last column (`evaluate.training_probe`) is the student before training on a seeded sample of what the arm's first seed trains on, graded against the answer verify kept: higher means easier problems.\n"
    );
}

fn funnel(doc: &ReportDoc, md: &mut String) {
    if doc.data.is_empty() {
        return;
    }
    let curations = &doc.curations;
    let _ = writeln!(md, "## Data per strategy\n");
    let verified: Vec<String> = curations.iter().map(|c| format!("verified ({c})")).collect();
    let trained: Vec<String> = curations.iter().map(|c| format!("trained on per run ({c})")).collect();
    let _ = writeln!(
        md,
        "| strategy | generated | degenerate | after dedup | after decontamination | {} | {} | calls / verified | tokens / verified |",
        verified.join(" | "),
        trained.join(" | ")
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|{}{}---:|---:|",
        "---:|".repeat(curations.len()),
        "---:|".repeat(curations.len())
    );
    for (label, f) in &doc.data {
        let v: Vec<String> =
            curations.iter().map(|c| f["verified"][c].as_u64().unwrap_or(0).to_string()).collect();
        let t: Vec<String> = curations
            .iter()
            .map(|c| f["trained_per_run"][c].as_f64().map_or("-".to_owned(), |x| format!("{x:.0}")))
            .collect();
        let denominator = curations.last().and_then(|c| f["verified"][c].as_u64()).unwrap_or(0);
        let per_verified = |x: u64| {
            if denominator == 0 { "-".to_owned() } else { format!("{:.1}", x as f64 / denominator as f64) }
        };
        let degenerate = &f["degenerate"];
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f["generated"],
            degenerate["share"].as_f64().map_or("-".to_owned(), |x| format!(
                "{}% ({})",
                pct(x),
                degenerate["total"]
            )),
            f["after_dedup"],
            f["after_decontamination"],
            v.join(" | "),
            t.join(" | "),
            per_verified(f["calls"].as_u64().unwrap_or(0)),
            per_verified(f["completion_tokens"].as_u64().unwrap_or(0)),
        );
    }
    let _ = writeln!(
        md,
        "\ndegenerate: items that are not problems (too short, markup, template placeholders, repetition loops), as a share of everything generated; the curated arm drops them, the paper arm keeps them. Calls and tokens (completion) of generation and solving per verified problem ({}).\n",
        curations.last().map_or("curated", String::as_str)
    );
    let _ = writeln!(md, "### Diversity per strategy\n");
    let _ = writeln!(
        md,
        "| strategy | items | {} |",
        MEASURES.iter().map(|m| m.1).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(md, "|---|---|{}", "---:|".repeat(MEASURES.len()));
    for (label, f) in &doc.data {
        for set in ["all", "kept"] {
            let cells: Vec<String> = MEASURES
                .iter()
                .map(|(k, _)| with_ci(&f["diversity"][set][*k]).unwrap_or_else(|| "n/a".into()))
                .collect();
            let n = f["diversity"][set]["distinct_1"]["n"].as_u64().unwrap_or(0);
            let _ = writeln!(
                md,
                "| {label} | {} ({n}) | {} |",
                if set == "all" { "all generated" } else { "kept" },
                cells.join(" | ")
            );
        }
    }
    let first = doc.data.values().next().map_or(Value::Null, |f| f["diversity"].clone());
    let source = first["semantic_source"]
        .as_str()
        .map_or("semantic: not measured (dedup.embeddings.provider = \"none\")".to_owned(), |s| {
            format!("semantic: the paper's 100 x mean(1 - max(cos, 0)) over pairs, embeddings from {s}")
        });
    let cap = first["pairwise_cap"].as_u64().or_else(|| first["pairwise_over_first"].as_u64()).unwrap_or(0);
    let _ = writeln!(
        md,
        "\n[low, high]: {:.0}% percentile bootstrap interval resampling whole generation conversations; n/a with fewer than two conversations. {source}; ROUGE-L and semantic over a seeded random subset of whole conversations of at most {cap} items per set.\n",
        100.0 * doc.method.confidence,
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn p_values_never_print_as_alpha_unless_they_are() {
        use super::p_value;
        assert_eq!(p_value(0.0496, 0.05), "0.0496");
        assert_eq!(p_value(0.0504, 0.05), "0.0504");
        assert_eq!(p_value(0.2, 0.05), "0.200");
        assert_eq!(p_value(0.0004, 0.05), "<0.001");
        assert_eq!(p_value(0.05, 0.05), "0.05000000");
    }
}
