//! The generate stage: for each strategy, conversations with the generator LLM until exactly
//! `generate.num_problems` problems are kept, written to
//! `runs/<name>/generate/<strategy>/problems.jsonl`.
//!
//! Resumable at any point: problems are appended and fsync'd with stable ids
//! (`<strategy>-c<conversation>-t<turn>-i<item>`), each finished conversation is logged in
//! `conversations.jsonl`, and every LLM call is cached by its request, so a rerun after a kill
//! re-sends no completed call and writes no duplicate. Conversations run concurrently in waves
//! and are written in conversation order, so which problems are kept does not depend on timing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::jsonl::{append_file, read_jsonl, write_all, write_line};
use super::{Shard, Stage, StageContext, StageError, StageName, StageOutput};
use crate::config::{Config, LlmConfig};
use crate::llm::{ChatRequest, Client, LlmError};
use crate::seeds::mix;
use crate::strategy::reply::{Item, extract_problem, parse_reply};
use crate::strategy::select::select;
use crate::strategy::{Message, PromptSpec, Role, Strategy, task_prompt};

/// Where task prompts live (`generate.task` names a file here).
pub const PROMPTS_DIR: &str = "data/prompts";
/// Conversations tried per strategy, as a multiple of those planned, before giving up.
const MAX_CONVERSATION_FACTOR: usize = 4;
/// Conversations with no usable problem at all after which a strategy is given up early.
const FAIL_FAST_AFTER: usize = 8;

pub struct Generate;

/// One kept problem, a line of `problems.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemRecord {
    pub id: String,
    pub strategy: Strategy,
    pub question: String,
    pub difficulty: Option<String>,
    /// The item as the model wrote it.
    pub text: String,
    /// Verbalized score (after repair), if the strategy gives one.
    pub probability: Option<f64>,
    /// The call that produced it: `<strategy>-c<conversation>-t<turn>`.
    pub call_id: String,
}

/// What calls produced: per conversation, and summed per strategy for the manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counts {
    calls_sent: u64,
    calls_cached: u64,
    /// Parse failures by kind (each retried up to `max_parse_retries`).
    parse_failures: BTreeMap<String, u64>,
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
    /// Set when the conversation ended early (a call failed for good).
    failed: Option<String>,
    #[serde(flatten)]
    counts: Counts,
}

struct Outcome {
    log: ConversationLog,
    records: Vec<ProblemRecord>,
}

fn llm_of(config: &Config) -> Result<(&str, &LlmConfig), StageError> {
    let name = config.generate.llm.as_str();
    let llm = config.llm.get(name).ok_or_else(|| StageError::Failed(format!("no [llm.{name}] section")))?;
    Ok((name, llm))
}

impl Stage for Generate {
    fn name(&self) -> StageName {
        StageName::Generate
    }

    fn config_slice(&self, config: &Config) -> serde_json::Value {
        let llm = config.llm.get(&config.generate.llm);
        // Concurrency, rate limits, timeouts and retries change how, not what: left out.
        json!({
            "generate": config.generate,
            "seed": config.run.seed,
            "llm": llm.map(|l| json!({
                "provider": l.provider, "base_url": l.base_url, "model": l.model,
                "model_path": l.model_path, "temperature": l.temperature, "top_p": l.top_p,
                "max_tokens": l.max_tokens, "json_schema": l.json_schema,
            })),
        })
    }

    fn external_inputs(&self, config: &Config) -> Vec<PathBuf> {
        vec![Path::new(PROMPTS_DIR).join(format!("{}.txt", config.generate.task))]
    }

    fn shardable(&self) -> bool {
        true
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let config = ctx.config;
        let (name, llm) = llm_of(config)?;
        let task = task_prompt(Path::new(PROMPTS_DIR), &config.generate.task)
            .map_err(|e| StageError::Failed(format!("generate.task: {e}")))?;
        let (client, runtime) = super::llm_client(ctx, name, llm)?;

        let mut output = StageOutput::default();
        for &strategy in &config.generate.strategies {
            let dir = ctx.dir.join(strategy.as_str());
            std::fs::create_dir_all(&dir).map_err(|source| StageError::Io { path: dir.clone(), source })?;
            let job = Job { strategy, config, llm, task: &task, client: client.clone(), dir: &dir };
            let counts = runtime.block_on(job.run(ctx))?;
            output.outputs.push(dir.join("problems.jsonl"));
            output.outputs.push(dir.join("conversations.jsonl"));
            output.counts.insert(strategy.as_str().to_owned(), counts);
        }
        Ok(output)
    }
}

struct Job<'a> {
    strategy: Strategy,
    config: &'a Config,
    llm: &'a LlmConfig,
    task: &'a str,
    client: Arc<Client>,
    dir: &'a Path,
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
        let rows = read_jsonl::<ProblemRecord>(&problems_path)?;
        let mut kept_ids: BTreeSet<String> = rows.iter().map(|r| r.id.clone()).collect();
        if rows.len() > target {
            // `num_problems` went down since the last run: keep the first ones, as a fresh run would.
            let mut text = String::new();
            for row in &rows[..target] {
                text.push_str(&serde_json::to_string(row).expect("records serialize"));
                text.push('\n');
            }
            crate::manifest::write_atomic(&problems_path, text.as_bytes())
                .map_err(|source| StageError::Io { path: problems_path.clone(), source })?;
            kept_ids = rows[..target].iter().map(|r| r.id.clone()).collect();
        }
        let logs = read_jsonl::<ConversationLog>(&log_path)?;
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
        let mut next = 0usize;
        while kept_ids.len() < target {
            // As many conversations as the yield so far says the rest needs (all of a
            // conversation's items at first): one wave, not a trickle of small ones, when
            // parse failures or missing questions thin the yield.
            let kept_so_far = kept_ids.len().min(target);
            let needed = match totals.conversations as usize {
                done_convs if done_convs > 0 && kept_so_far > 0 => {
                    ((target - kept_so_far) * done_convs).div_ceil(kept_so_far)
                }
                _ => (target - kept_so_far).div_ceil(per_conversation),
            };
            let wave: Vec<usize> =
                (next..max_conversations).filter(|c| !done.contains(c)).take(needed).collect();
            if wave.is_empty() {
                return Err(StageError::Failed(format!(
                    "{}: only {} of {target} problems after {max_conversations} conversations ({})",
                    self.strategy,
                    kept_ids.len(),
                    totals.describe()
                )));
            }
            // Nothing usable from as many conversations as the target needs: the generator
            // does not follow this strategy's format (small local models and the VS JSON);
            // say so now rather than after every retry budget is spent.
            if kept_ids.is_empty() && totals.conversations as usize >= planned.max(FAIL_FAST_AFTER) {
                return Err(StageError::Failed(format!(
                    "{}: no usable problem in {} conversations ({}); the generator does not follow this strategy's format",
                    self.strategy,
                    totals.conversations,
                    totals.describe()
                )));
            }
            next = wave[wave.len() - 1] + 1;
            let mut tasks = tokio::task::JoinSet::new();
            for &c in &wave {
                let job = self.owned(&spec);
                tasks.spawn(async move { (c, job.conversation(c).await) });
            }
            let mut results = BTreeMap::new();
            while let Some(joined) = tasks.join_next().await {
                let (c, outcome) =
                    joined.map_err(|e| StageError::Failed(format!("a conversation task failed: {e}")))?;
                results.insert(c, outcome);
            }
            // In conversation order, so the kept set does not depend on timing.
            for (_, outcome) in results {
                for record in outcome.records {
                    if kept_ids.len() >= target || kept_ids.contains(&record.id) {
                        continue;
                    }
                    write_line(&mut problems, &problems_path, &record)?;
                    kept_ids.insert(record.id.clone());
                    bar.inc(1);
                }
                problems
                    .sync_data()
                    .map_err(|source| StageError::Io { path: problems_path.clone(), source })?;
                totals.add(&outcome.log);
                write_line(&mut conv_log, &log_path, &outcome.log)?;
                conv_log.sync_data().map_err(|source| StageError::Io { path: log_path.clone(), source })?;
            }
        }
        bar.finish();
        Ok(totals.to_json(kept_ids.len()))
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
        let bar = ctx.reporter.bar(&format!("{} {shard}", self.strategy), range.len() as u64);
        let mut tasks = tokio::task::JoinSet::new();
        for c in range {
            let job = self.owned(spec);
            tasks.spawn(async move { job.conversation(c).await });
        }
        let (mut totals, mut logs, mut items) = (Totals::default(), Vec::new(), 0);
        while let Some(joined) = tasks.join_next().await {
            let outcome =
                joined.map_err(|e| StageError::Failed(format!("a conversation task failed: {e}")))?;
            totals.add(&outcome.log);
            items += outcome.records.len();
            logs.push(outcome.log);
            bar.inc(1);
        }
        bar.finish();
        logs.sort_by_key(|l| l.conversation);
        write_all(&self.dir.join(format!("conversations.{}.jsonl", shard.tag())), &logs)?;
        Ok(totals.to_json(items))
    }

    fn owned(&self, spec: &PromptSpec) -> Conversation {
        Conversation {
            strategy: self.strategy,
            spec: spec.clone(),
            client: self.client.clone(),
            task: self.task.to_owned(),
            model: self.client.model_name(self.llm),
            llm: self.llm.clone(),
            schema: if self.llm.json_schema { self.strategy.response_schema(spec) } else { None },
            max_parse_retries: self.config.generate.max_parse_retries,
            selection: self.config.generate.selection.clone(),
            seed: self.config.run.seed,
        }
    }
}

struct Conversation {
    strategy: Strategy,
    spec: PromptSpec,
    client: Arc<Client>,
    task: String,
    model: String,
    llm: LlmConfig,
    schema: Option<serde_json::Value>,
    max_parse_retries: u32,
    selection: crate::config::SelectionConfig,
    seed: u64,
}

impl Conversation {
    /// One conversation: its turns in order, each retried on an unparseable reply.
    async fn conversation(self, c: usize) -> Outcome {
        let mut log = ConversationLog { conversation: c, failed: None, counts: Counts::default() };
        let mut records = Vec::new();
        let mut messages = self.strategy.first_messages(&self.spec, &self.task);
        for (t, &n) in self.strategy.turns(&self.spec).iter().enumerate() {
            if t > 0 {
                let Some(next) = self.strategy.continue_prompt(n) else { break };
                messages.push(Message::new(Role::User, next));
            }
            let Some((reply, items)) = self.turn(&messages, c, t, &mut log).await else { break };
            let call_id = format!("{}-c{c:05}-t{t}", self.strategy);
            let call_seed = mix(self.seed, call_key(c, t, 0));
            let chosen = select(&items, &self.selection, call_seed);
            log.counts.not_selected += (items.len() - chosen.len()) as u64;
            for (i, _) in chosen {
                let item = &items[i];
                log.counts.items += 1;
                match extract_problem(&item.text) {
                    Some(p) => records.push(ProblemRecord {
                        id: format!("{call_id}-i{i}"),
                        strategy: self.strategy,
                        question: p.question,
                        difficulty: p.difficulty,
                        text: item.text.clone(),
                        probability: item.score,
                        call_id: call_id.clone(),
                    }),
                    None => log.counts.missing_question += 1,
                }
            }
            messages.push(Message::new(Role::Assistant, self.strategy.history_content(&reply, &items)));
        }
        Outcome { log, records }
    }

    /// One turn: a reply that parses, or `None` after the retries (recorded in `log`).
    async fn turn(
        &self,
        messages: &[Message],
        c: usize,
        t: usize,
        log: &mut ConversationLog,
    ) -> Option<(String, Vec<Item>)> {
        for attempt in 0..=self.max_parse_retries {
            let key = call_key(c, t, attempt);
            let request = ChatRequest {
                model: self.model.clone(),
                messages: messages.to_vec(),
                temperature: self.llm.temperature,
                top_p: self.llm.top_p,
                max_tokens: self.llm.max_tokens,
                // Servers that honour seeds (vLLM) give each call its own sample, reproducibly;
                // shifted to fit the signed 64-bit integer servers expect.
                seed: Some(mix(self.seed, key) >> 1),
                response_format: self.schema.clone(),
            };
            let response = match self.client.chat(&request, key).await {
                Ok(r) => r,
                Err(e) => {
                    log.failed = Some(failure_text(&e));
                    return None;
                }
            };
            if response.cached {
                log.counts.calls_cached += 1;
            } else {
                log.counts.calls_sent += 1;
            }
            log.counts.prompt_tokens += response.usage.prompt_tokens;
            log.counts.completion_tokens += response.usage.completion_tokens;
            match parse_reply(self.strategy, &self.spec, &response.content) {
                Ok(items) => return Some((response.content, items)),
                Err(e) => *log.counts.parse_failures.entry(e.kind().to_owned()).or_default() += 1,
            }
        }
        log.failed = Some("unparseable reply after all retries".into());
        None
    }
}

fn failure_text(e: &LlmError) -> String {
    e.to_string().chars().take(300).collect()
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
