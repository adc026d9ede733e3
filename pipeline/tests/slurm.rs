//! `pipeline slurm` on the paper's config: scripts that bash accepts, job arrays where the
//! config shards, and a chain submitted in order with each job after the previous one. A
//! stand-in `sbatch` on PATH records its arguments and answers with job ids.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fake_sbatch(dir: &Path) {
    let script = dir.join("sbatch");
    std::fs::write(
        &script,
        r#"#!/usr/bin/env bash
# Stand-in sbatch: logs its arguments, prints "<id>;cluster" as --parsable does on federations.
n=$(( $(wc -l < "$SBATCH_LOG" 2>/dev/null || echo 0) + 1 ))
echo "$*" >> "$SBATCH_LOG"
echo "$((1000 + n));test-cluster"
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn slurm(tmp: &Path, extra: &[&str]) -> std::process::Output {
    let path = format!("{}:{}", tmp.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["slurm", "--config", "configs/paper.toml", "--set"])
        .arg(format!("run.out_dir=\"{}\"", tmp.join("runs").display()))
        .args(extra)
        .current_dir(root())
        .env("PATH", path)
        .env("SBATCH_LOG", tmp.join("sbatch.log"))
        .output()
        .unwrap()
}

const EXPECTED: [&str; 10] = [
    "01-generate-shards",
    "02-generate",
    "03-solve-shards",
    "04-solve",
    "05-dedup",
    "06-verify",
    "07-train",
    "08-evaluate-shards",
    "09-evaluate",
    "10-report",
];

#[test]
fn the_paper_config_becomes_a_chain_of_valid_scripts_submitted_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("bin")).unwrap();
    fake_sbatch(&tmp.path().join("bin"));
    let out = slurm(tmp.path(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let dir = tmp.path().join("runs/paper/slurm");
    for name in EXPECTED {
        let script = dir.join(format!("{name}.sbatch"));
        let text = std::fs::read_to_string(&script).unwrap();
        let check = Command::new("bash").arg("-n").arg(&script).output().unwrap();
        assert!(check.status.success(), "{name}: {}", String::from_utf8_lossy(&check.stderr));
        assert!(text.contains("#SBATCH --partition=gpu") && text.contains("module load cuda/12.8"), "{text}");
        assert!(text.contains("export HF_HOME=\"/scratch/$USER/hf\""), "{text}");
        let stage = name[3..].trim_end_matches("-shards");
        assert!(text.contains(&format!("--stages {stage}")), "{text}");
        // Shard jobs are arrays over their shard count; merge jobs are plain runs.
        let shards = match (name.ends_with("-shards"), stage) {
            (true, "generate") => Some(4),
            (true, "solve") => Some(8),
            (true, "evaluate") => Some(4),
            _ => None,
        };
        match shards {
            Some(n) => {
                assert!(text.contains(&format!("#SBATCH --array=0-{}", n - 1)), "{text}");
                assert!(text.contains(&format!("--shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\"")), "{text}");
            }
            None => assert!(!text.contains("--array") && !text.contains("--shard"), "{text}"),
        }
        let gpus = match stage {
            "train" | "evaluate" => "1",
            // Each solve job (shard or merge) starts its own vLLM over two GPUs.
            "solve" => "2",
            _ => "none",
        };
        assert_eq!(text.contains("--gres=gpu:"), gpus != "none", "{name}: {text}");
        assert!(gpus == "none" || text.contains(&format!("#SBATCH --gres=gpu:{gpus}\n")), "{name}: {text}");
        assert_eq!(
            text.contains("starts llm.solver's server (vllm) on this job's 2 GPU(s)"),
            stage == "solve",
            "{name}: {text}"
        );
        assert_eq!(
            text.contains("starts a server for each evaluation target in turn (vllm) on this job's 1 GPU(s)"),
            stage == "evaluate",
            "{name}: {text}"
        );
        assert_eq!(text.contains("#SBATCH --time=1-00:00:00"), stage == "train", "{name}");
    }
    // The jobs run a frozen copy of the effective config.
    assert!(std::fs::read_to_string(dir.join("config.toml")).unwrap().contains("[slurm.shards]"));
    let check = Command::new("bash").arg("-n").arg(dir.join("submit.sh")).output().unwrap();
    assert!(check.status.success());

    // Submitted in flow order, each after the previous job's id (the cluster suffix dropped).
    let log = std::fs::read_to_string(tmp.path().join("sbatch.log")).unwrap();
    let calls: Vec<&str> = log.lines().collect();
    assert_eq!(calls.len(), EXPECTED.len(), "{log}");
    for (i, call) in calls.iter().enumerate() {
        assert!(call.starts_with("--parsable"), "{call}");
        assert!(call.ends_with(&format!("{}.sbatch", EXPECTED[i])), "{call}");
        if i == 0 {
            assert!(!call.contains("--dependency"), "{call}");
        } else {
            assert!(call.contains(&format!("--dependency=afterok:{} ", 1000 + i)), "{call}");
        }
    }
    let jobs: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("jobs.json")).unwrap()).unwrap();
    assert_eq!(jobs[9]["id"], "1010");
    assert_eq!(jobs[9]["job"], "10-report");
}

#[test]
fn a_dry_run_writes_scripts_and_submits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("bin")).unwrap();
    fake_sbatch(&tmp.path().join("bin"));
    let out = slurm(
        tmp.path(),
        &["--dry-run", "--stages", "train,evaluate,report", "--set", "slurm.shards.evaluate=1"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!tmp.path().join("sbatch.log").exists());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("--dependency=afterok:<01-train> "), "{stdout}");
    let dir = tmp.path().join("runs/paper/slurm");
    let names: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sbatch"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names, ["01-train.sbatch", "02-evaluate.sbatch", "03-report.sbatch"]);
}

#[test]
fn data_parallel_training_asks_for_its_gpus() {
    let tmp = tempfile::tempdir().unwrap();
    let devices = r#"train.devices=["cuda:0", "cuda:1", "cuda:2", "cuda:3"]"#;
    let two =
        ["--dry-run", "--stages", "train,evaluate", "--set", devices, "--set", "train.grad_accum_steps=4"];
    let out = slurm(tmp.path(), &two);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tmp.path().join("runs/paper/slurm");
    let train = std::fs::read_to_string(dir.join("01-train.sbatch")).unwrap();
    assert!(train.contains("#SBATCH --gres=gpu:4\n"), "{train}");
    let evaluate = std::fs::read_to_string(dir.join("02-evaluate-shards.sbatch")).unwrap();
    assert!(evaluate.contains("#SBATCH --gres=gpu:1\n"), "{evaluate}");

    // Four devices cannot share one micro-batch per step: refused before anything is written.
    let out = slurm(tmp.path(), &["--dry-run", "--stages", "train", "--set", devices]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("train.grad_accum_steps") && stderr.contains("multiple"), "{stderr}");
    // Nor may the job ask for fewer GPUs than the workers need.
    let out = slurm(
        tmp.path(),
        &[
            "--dry-run",
            "--stages",
            "train",
            "--set",
            devices,
            "--set",
            "train.grad_accum_steps=4",
            "--set",
            "slurm.stages.train.gpus=2",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("slurm.stages.train.gpus: asks for 2 GPUs but train.devices lists 4"),
        "{stderr}"
    );
}

#[test]
fn a_refused_submission_stops_the_chain_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("sbatch"),
        "#!/usr/bin/env bash\necho 'sbatch: error: invalid partition' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("sbatch"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = slurm(tmp.path(), &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("01-generate-shards.sbatch") && stderr.contains("invalid partition"), "{stderr}");
}

/// Values are quoted in the scripts, and scripts are not written over a run another process
/// holds.
#[test]
fn values_are_quoted_and_a_locked_run_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let out = slurm(
        tmp.path(),
        &["--set", "slurm.partition=\"gpu; rm -rf ~\"", "--set", "slurm.modules=[\"cuda 12\"]", "--dry-run"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let script = tmp.path().join("runs/paper/slurm/05-dedup.sbatch");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        text.contains("#SBATCH --partition='gpu; rm -rf ~'") && text.contains("module load 'cuda 12'"),
        "{text}"
    );
    let check = Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    let lock = std::fs::File::options().write(true).open(tmp.path().join("runs/paper/.lock")).unwrap();
    lock.try_lock().unwrap();
    let out = slurm(tmp.path(), &["--dry-run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("in use by another pipeline process"), "{stderr}");
}
