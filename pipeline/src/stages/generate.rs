//! The generate stage: for each strategy, conversations with the generator LLM until exactly
//! `generate.num_problems` problems are kept, written to
//! `runs/<name>/generate/<strategy>/problems.jsonl`.
//!
//! Every record carries the identity it was made under (the strategy, the generate config, the
//! generator's identity with its model's content digest, the seed, the task prompt, the
//! prompts' and this stage's versions), and problem ids embed it
//! (`<strategy>-<identity>-c<conversation>-t<turn>-i<item>`): stable across reruns of the same
//! identity, different across identities, so no later stage can mistake old problems for new.
//! A rerun under another identity drops the old records (and says how many).
//!
//! Resumable at any point: problems are appended and fsync'd, each finished conversation is
//! logged in `conversations.jsonl`, and every LLM call is cached (by endpoint, strategy and
//! request), so a rerun after a kill re-sends no completed call and writes no duplicate. A
//! conversation whose call failed for good is not logged: the next run asks again.
//! Conversations run concurrently, each call slot refilled as soon as it frees (no waves),
//! and are committed in conversation order through a reorder buffer, so which problems are
//! kept does not depend on timing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Stage, StageContext, StageError, StageOutput};
use crate::config::{Config, ResolvedLlm, Sampling};
use crate::identity::Identify;
use crate::strategy::reply::{Item, extract_problem, parse_reply, parse_truncated_reply};
use crate::strategy::select::select;
use crate::strategy::{PromptSpec, Prompting, TaskSource, task_prompt};
use llm::{Client, LlmError};
use vs_core::ChatRequest;
use vs_core::Origin;
use vs_core::jsonl::{append_file, keep_identity, write_all, write_line};
use vs_core::seeds::mix;
use vs_core::{Message, Role, Strategy};
use vs_core::{Shard, StageName};

/// Conversations tried per strategy, as a multiple of those planned, before giving up.
const MAX_CONVERSATION_FACTOR: usize = 4;
/// Conversations with no usable problem at all after which a strategy is given up early.
const FAIL_FAST_AFTER: usize = 8;

pub struct Generate;

/// This stage's version: 2 since records carry their identity and ids embed it; 3 since a
/// reply cut by `max_tokens` keeps its complete items instead of being asked again.
pub const VERSION: u32 = 3;

/// What one origin's problems depend on. Its short hash is the records' `identity`.
pub fn unit_identity(id: Identify<'_>, origin: &Origin) -> Result<serde_json::Value, StageError> {
    let c = id.config;
    let strategy = match origin {
        Origin::Strategy(s) => *s,
        Origin::Import(name) => {
            let import = &c.generate.import[name];
            let settings = crate::identity::reads::ImportReads::new(import);
            return Ok(json!({
                "stage": "generate",
                "version": VERSION,
                "import": name,
                // How the file's rows are read (numbers as their source text since 2).
                "importer": curation::import::VERSION,
                "settings": settings,
                "file_sha256": id.file(&import.path)?,
            }));
        }
    };
    let llm = id.llm(&c.generate.llm)?;
    let task = TaskSource::of(&c.generate.task);
    let task_sha256 = match &task {
        TaskSource::Builtin { text, .. } => vs_core::digest::sha256_hex(text.as_bytes()),
        TaskSource::File(path) => id.file(path)?,
    };
    // The user's file is known by its content (below), not by where it sits.
    let generate =
        crate::identity::reads::GenerateReads::new(&c.generate, matches!(task, TaskSource::File(_)));
    Ok(json!({
        "stage": "generate",
        "version": VERSION,
        "prompts_version": crate::strategy::PROMPTS_VERSION,
        "strategy": strategy,
        "generate": generate,
        "seed": c.run.seed,
        "llm": id.llm_identity(&llm)?,
        "task_sha256": task_sha256,
    }))
}

/// One kept problem, a line of `problems.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemRecord {
    pub id: String,
    /// The strategy that made it, or the imported set it comes from.
    pub strategy: String,
    pub question: String,
    pub difficulty: Option<String>,
    /// The item as the model wrote it.
    pub text: String,
    /// Verbalized score (after repair), if the strategy gives one.
    pub probability: Option<f64>,
    /// The call that produced it: `<strategy>-<identity>-c<conversation>-t<turn>`.
    pub call_id: String,
    /// The identity it was made under (see [`unit_identity`]); empty in pre-identity files.
    #[serde(default)]
    pub identity: String,
    /// An imported row's answer and solution, when its set maps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
}

/// What calls produced: per conversation, and summed per strategy for the manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counts {
    calls_sent: u64,
    calls_cached: u64,
    /// Parse failures by kind (each retried up to `max_parse_retries`).
    parse_failures: BTreeMap<String, u64>,
    /// Replies cut by `max_tokens` whose complete items were kept (the cut item dropped).
    #[serde(default)]
    salvaged_replies: u64,
    items: u64,
    missing_question: u64,
    not_selected: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.calls_sent += other.calls_sent;
        self.calls_cached += other.calls_cached;
        for (k, v) in &other.parse_failures {
            *self.parse_failures.entry(k.clone()).or_default() += v;
        }
        self.salvaged_replies += other.salvaged_replies;
        self.items += other.items;
        self.missing_question += other.missing_question;
        self.not_selected += other.not_selected;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// One finished conversation, a line of `conversations.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ConversationLog {
    conversation: usize,
    #[serde(default)]
    identity: String,
    /// Set when the conversation ended early (a call failed for good).
    failed: Option<String>,
    #[serde(flatten)]
    counts: Counts,
}

struct Outcome {
    log: ConversationLog,
    records: Vec<ProblemRecord>,
}

impl Stage for Generate {
    fn name(&self) -> StageName {
        StageName::Generate
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn config_slice(&self, id: Identify<'_>) -> Result<serde_json::Value, StageError> {
        Ok(
            json!({ "num_problems": id.config.generate.num_problems, "units": super::strategy_identities(id, unit_identity)? }),
        )
    }

    fn external_inputs(&self, config: &Config) -> Vec<PathBuf> {
        let mut inputs: Vec<PathBuf> = config.generate.import.values().map(|i| i.path.clone()).collect();
        if let TaskSource::File(path) = TaskSource::of(&config.generate.task) {
            inputs.push(path);
        }
        inputs
    }

    fn embedded_inputs(&self, config: &Config) -> Vec<(PathBuf, &'static [u8])> {
        match TaskSource::of(&config.generate.task) {
            task @ TaskSource::Builtin { text, .. } => vec![(task.path(), text.as_bytes())],
            TaskSource::File(_) => Vec::new(),
        }
    }

    fn shardable(&self) -> bool {
        true
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let config = ctx.config;
        let llm = ctx.identify().llm(&config.generate.llm)?;
        let task = task_prompt(&config.generate.task).map_err(|e| StageError::config("generate.task", e))?;
        let mut output = StageOutput::default();
        // Imported sets are read by the unsharded run only (array tasks would race on the file).
        let imports = if ctx.shard.is_none() { config.generate.import.iter().collect() } else { Vec::new() };
        for (name, import) in imports {
            let dir = ctx.dir.join(name);
            std::fs::create_dir_all(&dir).map_err(|source| StageError::Io { path: dir.clone(), source })?;
            let origin = Origin::Import(name.clone());
            let identity = crate::identity::short(&unit_identity(ctx.identify(), &origin)?);
            let counts = import_set(name, import, &dir, &identity)?;
            output.outputs.push(dir.join("problems.jsonl"));
            output.outputs.push(dir.join("malformed.jsonl"));
            output.counts.insert(name.clone(), counts);
        }
        if config.generate.strategies.is_empty() {
            // Imported sets only: no generator to start.
            return Ok(output);
        }
        let (client, runtime, _server) = super::llm_client(ctx, &llm)?;
        let meter = super::CallMeter::start(&client);
        let mut jobs = Vec::new();
        for &strategy in &config.generate.strategies {
            let dir = ctx.dir.join(strategy.as_str());
            std::fs::create_dir_all(&dir).map_err(|source| StageError::Io { path: dir.clone(), source })?;
            let identity =
                crate::identity::short(&unit_identity(ctx.identify(), &Origin::Strategy(strategy))?);
            jobs.push((strategy, dir, identity));
        }
        // The strategies run at once: their calls share the engine's running batch (one
        // strategy's conversations alone keep few rows decoding), and a paid endpoint gets no
        // more calls than before (each strategy keeps its own dispatch rule; the client caps
        // the calls in flight). Which problems each keeps does not depend on timing. The first
        // error stops the others (their finished calls are cached).
        let runs = jobs.iter().map(|(strategy, dir, identity)| {
            let job = Job {
                strategy: *strategy,
                config,
                llm: &llm,
                task: &task,
                client: client.clone(),
                dir,
                identity,
            };
            async move {
                let started = std::time::Instant::now();
                let counts = job.run(ctx).await?;
                Ok::<_, StageError>((counts, started.elapsed().as_secs_f64()))
            }
        });
        let results = runtime.block_on(futures_util::future::try_join_all(runs))?;
        let mut walls = serde_json::Map::new();
        for ((strategy, dir, _), (counts, wall)) in jobs.iter().zip(results) {
            output.outputs.push(dir.join("problems.jsonl"));
            output.outputs.push(dir.join("conversations.jsonl"));
            output.counts.insert(strategy.as_str().to_owned(), counts);
            walls.insert(strategy.as_str().to_owned(), json!((wall * 1000.0).round() / 1000.0));
        }
        output.metrics.insert("llm".to_owned(), meter.to_json(&client));
        output.metrics.insert("wall_s".to_owned(), walls.into());
        Ok(output)
    }
}

/// An imported set's problems: the file's usable rows (the first `limit`), in file order, as
/// `problems.jsonl`; malformed rows go to `malformed.jsonl` (where, why), are counted by reason
/// and the first few named in the log.
/// The ids embed the identity, like generated ones: `<name>-<identity>-<row id>`.
fn import_set(
    name: &str,
    import: &crate::config::ImportConfig,
    dir: &Path,
    identity: &str,
) -> Result<serde_json::Value, StageError> {
    let file = import.path.file_name().map_or_else(|| name.to_owned(), |f| f.to_string_lossy().into_owned());
    let got = curation::import::read_as(&import.path, &import.fields(), &file)
        .map_err(|e| StageError::config(format!("generate.import.{name}"), e))?;
    for m in got.malformed.iter().take(5) {
        tracing::warn!("generate.import.{name}: {}: {}", m.at, m.reason);
    }
    if got.malformed.len() > 5 {
        tracing::warn!("generate.import.{name}: {} more malformed rows", got.malformed.len() - 5);
    }
    let usable = got.rows.len();
    let malformed = got.malformed_by_reason();
    let take = import.limit.unwrap_or(usable).min(usable);
    if let Some(id) = curation::import::repeated_id(&got.rows[..take]) {
        return Err(StageError::config(
            format!("generate.import.{name}"),
            format!(
                "{}: id `{id}` appears more than once (map another field with `id`, or none)",
                import.path.display()
            ),
        ));
    }
    let mut records = Vec::with_capacity(take);
    for row in got.rows.into_iter().take(take) {
        records.push(ProblemRecord {
            id: format!("{name}-{identity}-{}", row.id),
            strategy: name.to_owned(),
            question: row.question.clone(),
            difficulty: None,
            text: row.question,
            probability: None,
            call_id: format!("import:{}", row.id),
            identity: identity.to_owned(),
            answer: row.answer,
            solution: row.solution,
        });
    }
    if records.is_empty() {
        return Err(StageError::config(
            format!("generate.import.{name}"),
            format!(
                "no usable row in {} ({} malformed: {:?})",
                import.path.display(),
                got.malformed.len(),
                got.malformed.iter().map(|m| &m.reason).take(3).collect::<Vec<_>>()
            ),
        ));
    }
    write_all(&dir.join("problems.jsonl"), &records)?;
    // Every unusable row with where it is and why, not only the first few in the log.
    write_all(&dir.join("malformed.jsonl"), &got.malformed)?;
    Ok(json!({
        "imported_from": import.path,
        "rows": usable + got.malformed.len(),
        "malformed": malformed,
        "usable": usable,
        "kept": records.len(),
    }))
}

struct Job<'a> {
    strategy: Strategy,
    config: &'a Config,
    llm: &'a ResolvedLlm,
    task: &'a str,
    client: Arc<Client>,
    dir: &'a Path,
    identity: &'a str,
}

impl Job<'_> {
    async fn run(&self, ctx: &StageContext<'_>) -> Result<serde_json::Value, StageError> {
        let target = self.config.generate.num_problems;
        let spec = PromptSpec::new(self.strategy, &self.config.generate);
        let per_conversation: usize = self.strategy.turns(&spec).iter().sum::<usize>().max(1);
        if let Some(shard) = ctx.shard {
            return self.run_shard(ctx, shard, &spec, target.div_ceil(per_conversation)).await;
        }
        let problems_path = self.dir.join("problems.jsonl");
        let log_path = self.dir.join("conversations.jsonl");
        let what = format!("generate/{}", self.strategy);
        let mut rows = keep_identity::<ProblemRecord>(&problems_path, self.identity, &what, |r| &r.identity)?;
        let mut logs = keep_identity::<ConversationLog>(&log_path, self.identity, &what, |l| &l.identity)?;
        if rows.len() > target {
            // `num_problems` went down since the last run: keep the first ones, as a fresh run
            // would, and forget the conversations from the last kept one on, so that raising it
            // again replays them (from the cache) exactly as a fresh run would have used them.
            rows.truncate(target);
            write_all(&problems_path, &rows)?;
            if let Some(last) = rows.last().and_then(|r| conversation_of(&r.call_id)) {
                logs.retain(|l| l.conversation < last);
                write_all(&log_path, &logs)?;
            }
        }
        let mut kept_ids: BTreeSet<String> = rows.into_iter().map(|r| r.id).collect();
        let done: BTreeSet<usize> = logs.iter().map(|l| l.conversation).collect();
        let mut totals = Totals::default();
        for l in &logs {
            totals.add(l);
        }

        let planned = target.div_ceil(per_conversation);
        let max_conversations = planned * MAX_CONVERSATION_FACTOR + 10;
        let bar = ctx.reporter.bar(self.strategy.as_str(), target as u64);
        bar.inc(kept_ids.len().min(target) as u64);
        let mut problems = append_file(&problems_path)?;
        let mut conv_log = append_file(&log_path)?;
        let mut failures = super::Failures::default();
        // Calls flow continuously: a finished conversation's slot goes to the next one at once
        // (no wave waits for its slowest call), up to the LLM's concurrency. Results wait in a
        // reorder buffer and are committed in conversation order, so which problems are kept
        // does not depend on timing; dispatching stops while the conversations in flight are
        // expected to yield what is still missing.
        let max_in_flight = self.llm.throughput.max_concurrency.max(1);
        // Conversations running at once: more than the call slots (which the client enforces),
        // so that a conversation parsing its reply or writing it to the cache holds no slot.
        let max_tasks = 2 * max_in_flight;
        // Finished conversations waiting behind a slow one: bounded, so memory is.
        let max_uncommitted = 16 * max_in_flight;
        let mut queue = (0..max_conversations).filter(|c| !done.contains(c));
        // Dispatched and not yet committed (running, or finished and waiting in `finished`).
        let mut in_flight: BTreeSet<usize> = BTreeSet::new();
        let mut finished: BTreeMap<usize, Result<Outcome, LlmError>> = BTreeMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut syncer = vs_core::jsonl::Syncer::new(max_in_flight);
        let mut unlogged: Vec<ConversationLog> = Vec::new();
        let flush = |unlogged: &mut Vec<ConversationLog>, problems: &File, conv_log: &mut File| {
            if unlogged.is_empty() {
                return Ok(());
            }
            vs_core::jsonl::sync(problems, &problems_path)?;
            for log in unlogged.drain(..) {
                write_line(conv_log, &log_path, &log)?;
            }
            vs_core::jsonl::sync(conv_log, &log_path)
        };
        while kept_ids.len() < target {
            failures.check(
                &format!("generate {}: conversations", self.strategy),
                planned,
                self.config.run.max_failed_fraction,
            )?;
            // Nothing usable from as many conversations as the target needs: the generator
            // does not follow this strategy's format (small local models and the VS JSON);
            // say so now rather than after every retry budget is spent.
            if kept_ids.is_empty() && totals.conversations as usize >= planned.max(FAIL_FAST_AFTER) {
                return Err(StageError::config(
                    "generate.llm",
                    format!(
                        "no usable problem in {} conversations ({}); the generator does not follow this strategy's format",
                        totals.conversations,
                        totals.describe()
                    ),
                )
                .within(self.strategy.as_str()));
            }
            // Problems per conversation so far (all of a conversation's items at first).
            let kept_so_far = kept_ids.len().min(target);
            let per = match totals.conversations {
                0 => per_conversation as f64,
                n if kept_so_far > 0 => kept_so_far as f64 / n as f64,
                _ => per_conversation as f64,
            };
            // Until something is kept, no more conversations than the fail-fast rule needs.
            let probing = kept_ids.is_empty().then(|| planned.max(FAIL_FAST_AFTER));
            while tasks.len() < max_tasks
                && in_flight.len() < max_uncommitted
                && (in_flight.len() as f64) * per < (target - kept_so_far) as f64
                && probing.is_none_or(|n| totals.conversations as usize + in_flight.len() < n)
            {
                let Some(c) = queue.next() else { break };
                let job = self.owned(&spec);
                tasks.spawn(async move { (c, job.conversation(c).await) });
                in_flight.insert(c);
            }
            if in_flight.is_empty() {
                return Err(StageError::config(
                    "generate.llm",
                    format!(
                        "only {} of {target} problems after {max_conversations} conversations ({})",
                        kept_ids.len(),
                        totals.describe()
                    ),
                )
                .within(self.strategy.as_str()));
            }
            let Some(joined) = tasks.join_next().await else { break };
            let (c, outcome) =
                joined.map_err(|e| StageError::Runtime(format!("a conversation task failed: {e}")))?;
            // A key the server refuses, a model it does not serve: no later call can succeed, so
            // stop now (whatever comes before it) and say what to fix.
            let outcome = match outcome {
                Err(e) if e.is_fatal() => {
                    return Err(StageError::llm(format!("llm.{}", self.llm.name), e)
                        .within(format!("generate {}", self.strategy)));
                }
                outcome => outcome,
            };
            finished.insert(c, outcome);
            // Commit every finished conversation that no earlier one in flight precedes.
            while let Some(&first) = in_flight.first()
                && let Some(outcome) = finished.remove(&first)
                && kept_ids.len() < target
            {
                in_flight.remove(&first);
                let outcome = match outcome {
                    Ok(o) => o,
                    // Not logged as done: the next run asks again (completed calls are cached).
                    Err(e) => {
                        failures.add(&e);
                        continue;
                    }
                };
                for record in outcome.records {
                    if kept_ids.len() >= target || kept_ids.contains(&record.id) {
                        continue;
                    }
                    write_line(&mut problems, &problems_path, &record)?;
                    kept_ids.insert(record.id.clone());
                    bar.inc(1);
                }
                totals.add(&outcome.log);
                // A conversation is logged as done only once its problems are on disk (a
                // conversation redone after a crash adds none twice: ids are checked).
                unlogged.push(outcome.log);
                if syncer.due() {
                    flush(&mut unlogged, &problems, &mut conv_log)?;
                    syncer.synced();
                }
            }
        }
        flush(&mut unlogged, &problems, &mut conv_log)?;
        // Conversations still in flight past the target are not needed (their finished calls
        // are cached; a larger num_problems later replays them).
        tasks.abort_all();
        bar.finish();
        failures.check(
            &format!("generate {}: conversations", self.strategy),
            planned,
            self.config.run.max_failed_fraction,
        )?;
        let mut counts = totals.to_json(kept_ids.len());
        counts["failed_calls"] = json!(failures.by_reason);
        Ok(counts)
    }

    /// One job-array task: this shard's share of the `planned` conversations, run for their
    /// calls, which land in the call cache. The unsharded run then replays them in
    /// conversation order (no call sent twice) and tops up if parse failures left it short.
    async fn run_shard(
        &self,
        ctx: &StageContext<'_>,
        shard: Shard,
        spec: &PromptSpec,
        planned: usize,
    ) -> Result<serde_json::Value, StageError> {
        let range = shard.range(planned);
        let range_len = range.len();
        let bar = ctx.reporter.bar(&format!("{} {shard}", self.strategy), range.len() as u64);
        let mut tasks = tokio::task::JoinSet::new();
        for c in range {
            let job = self.owned(spec);
            tasks.spawn(async move { job.conversation(c).await });
        }
        let (mut totals, mut logs, mut items) = (Totals::default(), Vec::new(), 0);
        let mut failures = super::Failures::default();
        while let Some(joined) = tasks.join_next().await {
            let outcome =
                joined.map_err(|e| StageError::Runtime(format!("a conversation task failed: {e}")))?;
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) if e.is_fatal() => {
                    return Err(StageError::llm(format!("llm.{}", self.llm.name), e)
                        .within(format!("generate {} shard {shard}", self.strategy)));
                }
                Err(e) => {
                    failures.add(&e);
                    bar.inc(1);
                    continue;
                }
            };
            totals.add(&outcome.log);
            items += outcome.records.len();
            logs.push(outcome.log);
            bar.inc(1);
        }
        bar.finish();
        logs.sort_by_key(|l| l.conversation);
        write_all(&self.dir.join(format!("conversations.{}.jsonl", shard.tag())), &logs)?;
        failures.check(
            &format!("generate {} shard {shard}: conversations", self.strategy),
            range_len,
            self.config.run.max_failed_fraction,
        )?;
        Ok(totals.to_json(items))
    }

    fn owned(&self, spec: &PromptSpec) -> Conversation {
        Conversation {
            strategy: self.strategy,
            spec: spec.clone(),
            client: self.client.clone(),
            task: self.task.to_owned(),
            model: self.client.model_name(),
            sampling: self.llm.sampling.clone(),
            schema: if self.llm.sampling.json_schema { self.strategy.response_schema(spec) } else { None },
            max_parse_retries: self.config.generate.max_parse_retries,
            selection: self.config.generate.selection.clone(),
            // Each strategy samples its own stream: Multi-turn's first request is Direct's, and
            // the two arms must not share a sample.
            seed: mix(self.config.run.seed, vs_core::seeds::text_key(self.strategy.as_str())),
            selection_seed: self.config.run.seed,
            identity: self.identity.to_owned(),
            arm: format!("generate/{}", self.strategy),
        }
    }
}

struct Conversation {
    strategy: Strategy,
    spec: PromptSpec,
    client: Arc<Client>,
    task: String,
    model: String,
    sampling: Sampling,
    schema: Option<serde_json::Value>,
    max_parse_retries: u32,
    selection: crate::config::SelectionConfig,
    /// The strategy's sampling seed (run seed mixed with the strategy).
    seed: u64,
    /// The run seed, for post-hoc selection draws.
    selection_seed: u64,
    identity: String,
    arm: String,
}

impl Conversation {
    /// One conversation: its turns in order, each retried on an unparseable reply.
    /// A call that failed for good is an error: the conversation is not logged as done.
    async fn conversation(self, c: usize) -> Result<Outcome, LlmError> {
        let mut log = ConversationLog {
            conversation: c,
            identity: self.identity.clone(),
            failed: None,
            counts: Counts::default(),
        };
        let mut records = Vec::new();
        let mut messages = self.strategy.first_messages(&self.spec, &self.task);
        for (t, &n) in self.strategy.turns(&self.spec).iter().enumerate() {
            if t > 0 {
                let Some(next) = self.strategy.continue_prompt(n) else { break };
                messages.push(Message::new(Role::User, next));
            }
            let Some((reply, items)) = self.turn(&messages, c, t, &mut log).await? else { break };
            let call_id = format!("{}-{}-c{c:05}-t{t}", self.strategy, &self.identity[..8]);
            let call_seed = mix(self.selection_seed, call_key(c, t, 0));
            let chosen = select(&items, &self.selection, call_seed);
            log.counts.not_selected += (items.len() - chosen.len()) as u64;
            for (i, _) in chosen {
                let item = &items[i];
                log.counts.items += 1;
                match extract_problem(&item.text) {
                    Some(p) => records.push(ProblemRecord {
                        id: format!("{call_id}-i{i}"),
                        strategy: self.strategy.as_str().to_owned(),
                        question: p.question,
                        difficulty: p.difficulty,
                        text: item.text.clone(),
                        probability: item.score,
                        call_id: call_id.clone(),
                        identity: self.identity.clone(),
                        answer: None,
                        solution: None,
                    }),
                    None => log.counts.missing_question += 1,
                }
            }
            messages.push(Message::new(Role::Assistant, self.strategy.history_content(&reply, &items)));
        }
        Ok(Outcome { log, records })
    }

    /// One turn: a reply that parses, or `None` after the parse retries (recorded in `log`;
    /// each retry is a new call with its own seed, so a deterministic bad reply is never
    /// asked for twice), or the error of a call that failed for good.
    async fn turn(
        &self,
        messages: &[Message],
        c: usize,
        t: usize,
        log: &mut ConversationLog,
    ) -> Result<Option<(String, Vec<Item>)>, LlmError> {
        for attempt in 0..=self.max_parse_retries {
            let key = call_key(c, t, attempt);
            let request = ChatRequest {
                model: self.model.clone(),
                messages: messages.to_vec(),
                temperature: self.sampling.temperature,
                top_p: self.sampling.top_p,
                max_tokens: self.sampling.max_tokens,
                // Servers that honour seeds (vLLM) give each call its own sample, reproducibly;
                // shifted to fit the signed 64-bit integer servers expect.
                seed: Some(mix(self.seed, key) >> 1),
                response_format: self.schema.clone(),
            };
            let asked = std::time::Instant::now();
            let response = self.client.chat(&request, &self.arm, key).await?;
            let replied = asked.elapsed();
            if response.cached {
                log.counts.calls_cached += 1;
            } else {
                log.counts.calls_sent += 1;
            }
            log.counts.prompt_tokens += response.usage.prompt_tokens;
            log.counts.completion_tokens += response.usage.completion_tokens;
            let parsing = std::time::Instant::now();
            // A reply cut by its token budget keeps the items it completed: asking again
            // would mostly be cut again (SmolLM2's VS-Multi replies were cut at 320 tokens
            // half the time), and each retry waits for the one before.
            let cut = response.finish_reason.as_deref() == Some("length");
            let parsed = match parse_reply(self.strategy, &self.spec, &response.content) {
                Err(e) if cut => parse_truncated_reply(self.strategy, &self.spec, &response.content)
                    .inspect(|_| log.counts.salvaged_replies += 1)
                    .map_err(|_| e),
                parsed => parsed,
            };
            // With the engine's line for the same call (`llm::request`): a turn's whole profile.
            tracing::debug!(
                target: "generate::turn",
                strategy = self.strategy.as_str(),
                conversation = c,
                turn = t,
                attempt,
                cached = response.cached,
                reply_ms = replied.as_millis() as u64,
                parse_us = parsing.elapsed().as_micros() as u64,
                tokens = response.usage.completion_tokens,
                parsed = parsed.is_ok(),
            );
            match parsed {
                Ok(items) => return Ok(Some((response.content, items))),
                Err(e) => *log.counts.parse_failures.entry(e.kind().to_owned()).or_default() += 1,
            }
        }
        log.failed = Some("unparseable reply after all retries".into());
        Ok(None)
    }
}

/// The conversation of a `call_id` (`<strategy>-<identity>-c<conversation>-t<turn>`).
fn conversation_of(call_id: &str) -> Option<usize> {
    let mut parts = call_id.rsplit('-');
    parts.next()?.strip_prefix('t')?;
    parts.next()?.strip_prefix('c')?.parse().ok()
}

/// The generation conversation a problem id belongs to: `<strategy>-<identity>-c<conversation>`
/// for generated problems (`...-c<conversation>-t<turn>-i<item>`); the id itself otherwise (an
/// imported row is its own). Items of one conversation are not independent (one call's k
/// items, later turns that see the earlier ones): diversity resamples them together.
pub fn conversation_key(id: &str) -> &str {
    let mut parts = id.rsplitn(3, '-');
    let (Some(item), Some(turn), Some(rest)) = (parts.next(), parts.next(), parts.next()) else { return id };
    let digits = |s: Option<&str>| s.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    let conversation = rest.rsplit('-').next();
    if digits(item.strip_prefix('i'))
        && digits(turn.strip_prefix('t'))
        && digits(conversation.and_then(|c| c.strip_prefix('c')))
    {
        rest
    } else {
        id
    }
}

/// A call's index within its strategy: conversation, turn, parse attempt.
fn call_key(c: usize, t: usize, attempt: u32) -> u64 {
    ((c as u64) << 16) | ((t as u64 & 0xff) << 8) | u64::from(attempt & 0xff)
}

#[derive(Default)]
struct Totals {
    conversations: u64,
    failed_conversations: u64,
    counts: Counts,
}

impl Totals {
    fn add(&mut self, l: &ConversationLog) {
        self.conversations += 1;
        self.failed_conversations += u64::from(l.failed.is_some());
        self.counts.add(&l.counts);
    }

    fn describe(&self) -> String {
        format!(
            "{} failed conversations, parse failures {:?}, {} items without a Question: line",
            self.failed_conversations, self.counts.parse_failures, self.counts.missing_question
        )
    }

    fn to_json(&self, kept: usize) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.counts).expect("counts serialize");
        v["kept"] = json!(kept);
        v["conversations"] = json!(self.conversations);
        v["failed_conversations"] = json!(self.failed_conversations);
        v
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conversation_keys_group_the_items_of_one_conversation() {
        use super::conversation_key;
        assert_eq!(conversation_key("vs_multi-3fa2b1c9-c00003-t1-i2"), "vs_multi-3fa2b1c9-c00003");
        assert_eq!(conversation_key("vs_multi-3fa2b1c9-c00003-t0-i4"), "vs_multi-3fa2b1c9-c00003");
        assert_eq!(conversation_key("direct-3fa2b1c9-c00017-t0-i0"), "direct-3fa2b1c9-c00017");
        // Imported rows (and anything else) are their own.
        for id in ["mine-0123abcd-row-7", "x", "a-b-c", "a-c1-t-i2", "p-c1-t2-ix"] {
            assert_eq!(conversation_key(id), id);
        }
    }
}
