//! Every shell command in README.md, BENCHMARKS.md and doc/*.md must work as written from
//! a fresh clone. The `sh` code blocks are extracted and each command is checked:
//!
//! * cheap ones are run: `opergroupd check --config FILE` (offline) must succeed;
//! * every other one is checked without running it, for a reason named in `kind` below
//!   (builds, root, a cluster, a long run): the binary is one this workspace builds, its
//!   subcommand and every `--flag` appear in its `--help`, `cargo -p/--bin/--bench/--test`
//!   name real packages and targets, scripts exist and parse (`bash -n`), files named
//!   exist, and fabric-sim control URLs are routes it serves;
//! * an unknown program fails the test (add it to `kind` with a reason), and so does an
//!   unlabeled block that looks like commands (label it `sh`, or `text` for output).
//!
//! Release binaries (`target/release/X`) are checked with this build's debug binaries:
//! the same program.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Top-level folders of the repository: a word starting with one of them is a file path.
const TREE: [&str; 10] =
    ["src/", "tests/", "deploy/", "examples/", "bench/", "benches/", "doc/", "lab/", "scripts/", "proto/"];
/// Words that start a command line, for spotting unlabeled command blocks.
const COMMAND_WORDS: [&str; 10] =
    ["cargo ", "bash ", "target/", "scripts/", "bench/", "opergroupd ", "curl ", "kubectl ", "docker ", "OPERGROUPD="];

struct Block {
    at: String,
    lang: String,
    lines: Vec<String>,
}

fn blocks(name: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            match open.take() {
                Some(b) => out.push(b),
                None => {
                    open = Some(Block { at: format!("{name}:{}", i + 1), lang: fence.trim().into(), lines: vec![] })
                }
            }
        } else if let Some(b) = &mut open {
            b.lines.push(line.to_string());
        }
    }
    out
}

/// Shell words of one line (quotes removed), comments dropped; `&&`, `;`, `|` and a
/// trailing `&` separate commands.
fn commands(line: &str) -> Vec<Vec<String>> {
    let (mut cmds, mut words, mut word) = (vec![], vec![], None::<String>);
    let mut chars = line.chars().peekable();
    let mut quote = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, '#') if word.is_none() => break,
            (None, c) if c.is_whitespace() || c == ';' || c == '|' || c == '&' => {
                words.extend(word.take());
                if !c.is_whitespace() {
                    while chars.peek() == Some(&c) {
                        chars.next();
                    }
                    cmds.push(std::mem::take(&mut words));
                }
            }
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    cmds.push(words);
    cmds.into_iter().filter(|c| !c.is_empty()).collect()
}

/// Packages and their binaries, [[bench]] targets, from the workspace's manifests.
struct Workspace {
    packages: BTreeMap<String, Vec<String>>,
    benches: Vec<String>,
}

fn workspace() -> Workspace {
    let mut packages = BTreeMap::new();
    let mut benches = vec![];
    for dir in [".", "lab", "bench", "proto"] {
        let toml = std::fs::read_to_string(Path::new(ROOT).join(dir).join("Cargo.toml")).unwrap();
        let (mut section, mut name, mut bins) = (String::new(), None, vec![]);
        for line in toml.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_string();
            } else if let Some(v) = line.strip_prefix("name = ").map(|v| v.trim_matches('"').to_string()) {
                match section.as_str() {
                    "[package]" => name = Some(v),
                    "[[bin]]" => bins.push(v),
                    "[[bench]]" => benches.push(v),
                    _ => {}
                }
            }
        }
        let name = name.unwrap();
        if bins.is_empty() && Path::new(ROOT).join(dir).join("src/main.rs").exists() {
            bins.push(name.clone());
        }
        packages.insert(name, bins);
    }
    Workspace { packages, benches }
}

/// How a command is verified.
enum Kind {
    /// Run it; it must exit 0.
    Run,
    /// Check it without running it, because of this.
    Static(&'static str),
}

/// Every program the docs may use, and whether it is run. An unknown one is an error.
fn kind(program: &str, args: &[String]) -> Result<Kind, String> {
    let sub = args.first().map(String::as_str).unwrap_or("");
    Ok(match program {
        "opergroupd" if sub == "check" && !args.iter().any(|a| a == "--online") => Kind::Run,
        "opergroupd" => Kind::Static("long-running or needs a running controller or fabric"),
        "fabric-sim" => Kind::Static("a long-running simulator on fixed ports"),
        "opergroupd-bench" => Kind::Static("a benchmark of minutes (release build)"),
        "cargo" => Kind::Static("builds and test runs are what the suite itself does"),
        "bash" | "scripts/test" => Kind::Static("root, network namespaces, or the whole suite"),
        script if is_script(script) => Kind::Static("installs tools or needs root"),
        "curl" => Kind::Static("talks to the fabric-sim started on the lines above"),
        "docker" | "kubectl" => Kind::Static("needs a container registry or a cluster"),
        "cp" | "echo" | "rm" => Kind::Static("edits files on the operator's system"),
        "grep" | "less" | "ls" | "wc" => Kind::Static("reads the output of the command before it"),
        "python3" | ".venv/bin/pip" => Kind::Static("builds the venv scripts/test also builds"),
        "perf" => Kind::Static("reads a profile recorded by the benchmark above"),
        "git" => Kind::Static("checks out an earlier commit beside this clone"),
        other => return Err(format!("unknown program `{other}`: add it to `kind` in tests/doc_commands.rs")),
    })
}

struct Checker {
    ws: Workspace,
    bin_dir: PathBuf,
    helps: BTreeMap<Vec<String>, String>,
    /// Commands run and commands checked statically, for the summary.
    ran: usize,
    /// Why each statically checked command is not run, and how many.
    checked: BTreeMap<&'static str, usize>,
}

impl Checker {
    fn new() -> Self {
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_opergroupd")).parent().unwrap().to_path_buf();
        Checker { ws: workspace(), bin_dir, helps: BTreeMap::new(), ran: 0, checked: BTreeMap::new() }
    }

    /// The debug build of a workspace binary (built here if this run did not build it).
    fn binary(&self, name: &str) -> Result<PathBuf, String> {
        let pkg = self.ws.packages.iter().find(|(_, bins)| bins.iter().any(|b| b == name)).map(|(p, _)| p);
        let Some(pkg) = pkg else { return Err(format!("`{name}` is not a binary of this workspace")) };
        let path = self.bin_dir.join(name);
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let ok = Command::new(cargo).args(["build", "-p", pkg, "--bin", name]).current_dir(ROOT).status();
            if !ok.is_ok_and(|s| s.success()) {
                return Err(format!("cannot build `{name}`"));
            }
        }
        Ok(path)
    }

    fn help(&mut self, bin: &str, sub: Option<&str>) -> Result<String, String> {
        let key: Vec<String> = [Some(bin), sub].into_iter().flatten().map(String::from).collect();
        if let Some(h) = self.helps.get(&key) {
            return Ok(h.clone());
        }
        let out = Command::new(self.binary(bin)?).args(sub).arg("--help").output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("`{}` --help failed: {}", key.join(" "), String::from_utf8_lossy(&out.stderr)));
        }
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        self.helps.insert(key, help.clone());
        Ok(help)
    }

    /// A workspace binary's subcommand (when it has subcommands) and flags exist.
    fn check_cli(&mut self, bin: &str, args: &[String]) -> Result<(), String> {
        let top = self.help(bin, None)?;
        let sub = match args.first() {
            Some(a) if top.contains("Commands:") && !a.starts_with('-') => {
                if !top.lines().any(|l| l.split_whitespace().next() == Some(a.as_str())) {
                    return Err(format!("`{bin} {a}`: no such subcommand"));
                }
                Some(a.as_str())
            }
            _ => None,
        };
        let help = self.help(bin, sub)?;
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            let flag = flag.split('=').next().unwrap();
            if !help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']').any(|w| w == flag) {
                return Err(format!("`{bin}{}`: no flag {flag}", sub.map(|s| format!(" {s}")).unwrap_or_default()));
            }
        }
        Ok(())
    }

    /// `target/{debug,release}/NAME` -> NAME, if it is that form.
    fn target_binary(word: &str) -> Option<&str> {
        word.strip_prefix("target/release/").or_else(|| word.strip_prefix("target/debug/"))
    }

    fn check_paths(&self, words: &[String]) -> Result<(), String> {
        // kubectl's `deploy/NAME` is a resource, not a file; only -f/-k name files.
        let kubectl = words.iter().any(|w| w == "kubectl");
        let mut skip = false;
        for (i, w) in words.iter().enumerate() {
            let file_arg = i > 0 && (words[i - 1] == "-f" || words[i - 1] == "-k");
            if std::mem::replace(&mut skip, w == ">" || w == ">>") || (kubectl && !file_arg) {
                continue; // an output file the command creates, or a kubectl resource
            }
            if let Some(bin) = Self::target_binary(w.split('=').next_back().unwrap()) {
                self.binary(bin)?;
            } else if TREE.iter().any(|t| w.starts_with(t)) && !Path::new(ROOT).join(w).exists() {
                return Err(format!("no file `{w}` in the repository"));
            }
        }
        Ok(())
    }

    fn check(&mut self, cmd: &[String]) -> Result<(), String> {
        let env: Vec<(&str, &str)> = cmd.iter().map_while(|w| w.split_once('=').filter(|(k, _)| is_var(k))).collect();
        let (program, args) = (&cmd[env.len()], &cmd[env.len() + 1..]);
        self.check_paths(cmd)?;
        let bin = Self::target_binary(program).or((program == "opergroupd").then_some("opergroupd"));
        let name = bin.unwrap_or(program);
        let kind = kind(name, args)?;
        match name {
            "cargo" => self.check_cargo(args)?,
            _ if name == "bash" || is_script(name) => {
                let script = if name == "bash" { args.first().ok_or("bash without a script")? } else { program };
                let ok = Command::new("bash").arg("-n").arg(Path::new(ROOT).join(script)).status();
                if !ok.is_ok_and(|s| s.success()) {
                    return Err(format!("`{script}` does not parse (bash -n)"));
                }
            }
            "curl" => {
                let url = args.iter().find(|a| a.contains(":580") || a.contains("/v1/")).ok_or("curl without a URL")?;
                let route = &url[url.find('/').ok_or("curl URL without a path")?..];
                let http = std::fs::read_to_string(Path::new(ROOT).join("lab/src/http.rs")).unwrap();
                if !http.contains(&format!(".route(\"{route}\"")) {
                    return Err(format!("fabric-sim serves no {route}"));
                }
                if let Some(body) = args.iter().position(|a| a == "-d").and_then(|i| args.get(i + 1)) {
                    serde_json::from_str::<serde_json::Value>(body).map_err(|e| format!("curl body: {e}"))?;
                }
            }
            _ if bin.is_some() => self.check_cli(name, args)?,
            _ => {}
        }
        match kind {
            Kind::Run => {
                let out = Command::new(self.binary(name)?)
                    .args(args)
                    .envs(env.iter().copied())
                    .current_dir(ROOT)
                    .output()
                    .map_err(|e| e.to_string())?;
                if !out.status.success() {
                    return Err(format!("exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr)));
                }
                self.ran += 1;
            }
            Kind::Static(why) => *self.checked.entry(why).or_default() += 1,
        }
        Ok(())
    }

    fn check_cargo(&mut self, args: &[String]) -> Result<(), String> {
        let ours = args.iter().position(|a| a == "--").map_or(args, |i| &args[..i]);
        let mut pkgs = vec![];
        for pair in ours.windows(2) {
            let (flag, value) = (pair[0].as_str(), pair[1].as_str());
            let ok = match flag {
                "-p" | "--package" => {
                    pkgs.push(value.to_string());
                    self.ws.packages.contains_key(value)
                }
                "--bin" => self.ws.packages.values().flatten().any(|b| b == value),
                "--bench" => self.ws.benches.iter().any(|b| b == value),
                "--test" => Path::new(ROOT).join("tests").join(format!("{value}.rs")).exists(),
                _ => true,
            };
            if !ok {
                return Err(format!("cargo {flag} {value}: no such package or target"));
            }
        }
        // `cargo run [-p P] -- ARGS`: ARGS go to that package's binary.
        if ours.first().map(String::as_str) == Some("run") && ours.len() < args.len() {
            let pkg = pkgs.first().map_or("opergroupd", String::as_str);
            let bin = self.ws.packages[pkg].first().ok_or("cargo run of a package without a binary")?.clone();
            self.check_cli(&bin, &args[ours.len() + 1..])?;
        }
        Ok(())
    }
}

/// A script of this repository run by its path (`scripts/test`, `deploy/kubernetes/validate.sh`).
fn is_script(program: &str) -> bool {
    TREE.iter().any(|t| program.starts_with(t)) && Path::new(ROOT).join(program).is_file()
}

fn is_var(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Check one markdown text; returns the problems found, each with file:line.
fn check_markdown(checker: &mut Checker, name: &str, text: &str) -> Vec<String> {
    let mut problems = vec![];
    for block in blocks(name, text) {
        let shell = matches!(block.lang.as_str(), "sh" | "bash" | "shell" | "console");
        if !shell {
            let first = block.lines.iter().map(|l| l.trim()).find(|l| !l.is_empty() && !l.starts_with('#'));
            if block.lang.is_empty() && first.is_some_and(|l| COMMAND_WORDS.iter().any(|w| l.starts_with(w))) {
                problems
                    .push(format!("{}: commands in an unlabeled block: label it ```sh (```text for output)", block.at));
            }
            continue;
        }
        let text = block.lines.join("\n").replace("\\\n", " ");
        for line in text.lines() {
            for cmd in commands(line) {
                if let Err(e) = checker.check(&cmd) {
                    problems.push(format!("{}: `{}`: {e}", block.at, line.trim()));
                }
            }
        }
    }
    problems
}

#[test]
fn every_documented_command_works_as_written() {
    let mut files = vec![PathBuf::from("README.md"), PathBuf::from("BENCHMARKS.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("doc"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.strip_prefix(ROOT).unwrap().to_path_buf())
        .collect();
    docs.sort();
    files.extend(docs);
    let mut checker = Checker::new();
    let mut problems = vec![];
    for f in &files {
        let text = std::fs::read_to_string(Path::new(ROOT).join(f)).unwrap();
        problems.extend(check_markdown(&mut checker, &f.display().to_string(), &text));
    }
    assert!(problems.is_empty(), "documented commands that do not work as written:\n{}", problems.join("\n"));
    let checked: usize = checker.checked.values().sum();
    println!("documented commands: {} run, {checked} checked without running: {:?}", checker.ran, checker.checked);
    // Guard against a parser that finds nothing: the docs hold dozens of commands.
    assert!(checker.ran >= 1 && checked >= 15, "ran {}, checked {checked}", checker.ran);
}

#[test]
fn a_broken_command_is_caught() {
    let mut checker = Checker::new();
    let cases = [
        ("target/release/opergroupd run --config examples/reference-fabric.yaml --dryrun", "no flag --dryrun"),
        ("target/release/opergroupd chek --config examples/reference-fabric.yaml", "no such subcommand"),
        ("target/release/opergroupd check --config examples/nope.yaml", "no file `examples/nope.yaml`"),
        ("target/release/opergroupd check --config tests/configs/unknown-key.yaml", "exit Some(1)"),
        ("target/release/nope --help", "not a binary of this workspace"),
        ("cargo bench -p opergroupd --bench nope", "--bench nope"),
        ("cargo run --release -- demoo", "no such subcommand"),
        ("OPERGROUPD=target/release/opergroupd bash tests/e2e/exabgp/nope.sh 20", "no file"),
        ("curl -s -XPOST 127.0.0.1:58000/v1/lnk -d '{}'", "serves no /v1/lnk"),
        ("frobnicate --now", "unknown program"),
    ];
    for (line, want) in cases {
        let problems = check_markdown(&mut checker, "case.md", &format!("```sh\n{line}\n```\n"));
        assert!(problems.iter().any(|p| p.contains(want)), "{line}: want {want:?}, got {problems:?}");
    }
    let unlabeled = check_markdown(&mut checker, "case.md", "```\ncargo build --release\n```\n");
    assert!(unlabeled.iter().any(|p| p.contains("unlabeled")), "{unlabeled:?}");
    // And the documented forms pass.
    let good = "```sh\nGNMI_PASSWORD='x' target/release/opergroupd check --config examples/reference-fabric.yaml  # ok\n\
                curl -s -XPOST 127.0.0.1:58000/v1/link -d '{\"node\":\"leaf1\"}' && cargo run --release -- demo\n```\n";
    let problems = check_markdown(&mut checker, "case.md", good);
    assert!(problems.is_empty(), "{problems:?}");
}
