//! Resource files read document by document and checked the way a cluster
//! would check them, with one result per document: what `agentpod
//! validate` prints, and what `render` and `run` refuse before doing
//! anything.
//!
//! Each document gets the checks that apply to its kind: `apiVersion`,
//! `kind` and `metadata` for every `sympozium.ai` resource; the full
//! schema ([`crate::schema::crds`]) for AgentRun and SkillPack; for each
//! AgentRun, the webhook and name rules ([`crate::validate`]), the
//! references it makes to other documents, and whatever [`render`] would
//! refuse. A problem is one line: `<file>[#doc]: <Kind> <name>: <field>:
//! <what is wrong>`.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::input::Bundle;
use crate::render::{RenderOptions, render};
use crate::resources::{API_VERSION, GROUP};
use crate::schema::{self, crds};
use crate::validate::{Violation, validate, validate_skill_pack};
use crate::{names, render::Inputs};

/// The largest resource file read (a bigger one is refused, unread).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The `sympozium.ai` kinds a cluster knows.
pub const SYMPOZIUM_KINDS: [&str; 9] = [
    "AgentRun",
    "Agent",
    "SkillPack",
    "SympoziumPolicy",
    "MCPServer",
    "Model",
    "Ensemble",
    "SympoziumSchedule",
    "SympoziumConfig",
];

/// Skill pack references that need no SkillPack document: `memory` is the
/// memory server the Pod gets.
const BUILT_IN_PACKS: [&str; 1] = ["memory"];

/// One input file (or standard input).
#[derive(Debug, Clone)]
pub struct Source {
    /// The name it is shown under (the path as given, or `<stdin>`).
    pub name: String,
    /// The folder relative paths inside it are resolved from.
    pub dir: PathBuf,
    /// Its text, or why it could not be read.
    pub text: Result<String, String>,
}

impl Source {
    /// Reads `path` (`-`: standard input), at most [`MAX_FILE_BYTES`].
    pub fn read(path: &Path) -> Source {
        let cwd = std::env::current_dir().unwrap_or_default();
        if path.as_os_str() == "-" {
            let mut s = String::new();
            let text = std::io::stdin()
                .take(MAX_FILE_BYTES + 1)
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read standard input: {e}"))
                .and_then(|_| bounded(s));
            return Source {
                name: "<stdin>".into(),
                dir: cwd,
                text,
            };
        }
        let dir = path
            .parent()
            .map(|p| cwd.join(p))
            .unwrap_or_else(|| cwd.clone());
        let text = std::fs::File::open(path)
            .and_then(|f| {
                let mut s = String::new();
                f.take(MAX_FILE_BYTES + 1).read_to_string(&mut s)?;
                Ok(s)
            })
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_owned(),
                std::io::ErrorKind::InvalidData => "not UTF-8 text".to_owned(),
                _ => format!("cannot read it: {e}"),
            })
            .and_then(bounded);
        Source {
            name: path.display().to_string(),
            dir,
            text,
        }
    }

    /// A source from text (tests, embedded input).
    pub fn text(name: &str, text: &str) -> Source {
        Source {
            name: name.into(),
            dir: std::env::current_dir().unwrap_or_default(),
            text: Ok(text.into()),
        }
    }
}

fn bounded(s: String) -> Result<String, String> {
    if s.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "larger than {} MiB; not read",
            MAX_FILE_BYTES / 1024 / 1024
        ));
    }
    Ok(s)
}

/// One YAML document of a source.
#[derive(Debug, Clone)]
pub struct Document {
    /// The source's name.
    pub file: String,
    /// The folder of the source.
    pub dir: PathBuf,
    /// 1-based position in the file.
    pub number: usize,
    /// Whether the file holds more than one document.
    pub multi: bool,
    /// The document.
    pub value: Value,
}

impl Document {
    /// `kind`, or empty.
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    /// `metadata.name`, or empty.
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }

    fn place(&self) -> String {
        if self.multi {
            format!("{}#{}", self.file, self.number)
        } else {
            self.file.clone()
        }
    }

    /// How results name it: `file[#n]: Kind name`.
    pub fn label(&self) -> String {
        let kind = match self.kind() {
            "" => "document",
            k => k,
        };
        match self.name() {
            "" => format!("{}: {kind}", self.place()),
            n => format!("{}: {kind} {n}", self.place()),
        }
    }
}

/// The result of one document (or of a file that could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocResult {
    /// `file[#n]: Kind name`.
    pub label: String,
    /// Every problem found, in order.
    pub problems: Vec<Violation>,
    /// Set when the document was not checked, and why.
    pub skipped: Option<String>,
    /// Said after `ok` (how far the document was checked).
    pub note: Option<String>,
}

impl DocResult {
    /// Its lines: `<label>: ok`, `<label>: skipped (...)`, or one
    /// `<label>: <field>: <message>` per problem.
    pub fn lines(&self) -> Vec<String> {
        if !self.problems.is_empty() {
            return self
                .problems
                .iter()
                .map(|p| match p.field.as_str() {
                    "" => format!("{}: {}", self.label, p.message),
                    f => format!("{}: {f}: {}", self.label, p.message),
                })
                .collect();
        }
        match (&self.skipped, &self.note) {
            (Some(why), _) => vec![format!("{}: skipped ({why})", self.label)],
            (None, Some(note)) => vec![format!("{}: ok ({note})", self.label)],
            (None, None) => vec![format!("{}: ok", self.label)],
        }
    }
}

/// Everything read from the sources, and the result of each document.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// One per document (and per unreadable file), in input order.
    pub results: Vec<DocResult>,
    /// The resources that could be read, for rendering.
    pub bundle: Bundle,
    /// The documents, in input order.
    pub documents: Vec<Document>,
}

impl Checked {
    /// Whether no document has a problem.
    pub fn ok(&self) -> bool {
        self.results.iter().all(|r| r.problems.is_empty())
    }

    /// Every result line.
    pub fn lines(&self) -> Vec<String> {
        self.results.iter().flat_map(DocResult::lines).collect()
    }

    /// Only the problem lines.
    pub fn problem_lines(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| !r.problems.is_empty())
            .flat_map(DocResult::lines)
            .collect()
    }

    /// The number of problems.
    pub fn problem_count(&self) -> usize {
        self.results.iter().map(|r| r.problems.len()).sum()
    }
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation {
        field: field.into(),
        message: message.into(),
    }
}

/// Splits a source into documents; a YAML error ends the file with one
/// result.
fn split(source: &Source, results: &mut Vec<(Option<usize>, DocResult)>) -> Vec<Document> {
    let failed = |label: String, message: String| DocResult {
        label,
        problems: vec![problem("", message)],
        skipped: None,
        note: None,
    };
    let text = match &source.text {
        Ok(t) => t,
        Err(why) => {
            results.push((None, failed(source.name.clone(), why.clone())));
            return Vec::new();
        }
    };
    let mut values = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(doc) {
            Ok(v) => values.push(v),
            Err(e) => {
                let label = format!("{}#{}", source.name, i + 1);
                results.push((None, failed(label, format!("not valid YAML: {e}"))));
                break;
            }
        }
    }
    let multi = values.len() > 1;
    values
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_null())
        .map(|(i, value)| Document {
            file: source.name.clone(),
            dir: source.dir.clone(),
            number: i + 1,
            multi,
            value,
        })
        .collect()
}

/// Reads `T` from a document that the schema had no complaint about; a
/// failure (a field the schema lets through but the type refuses) is
/// reported with its path.
fn typed<T: DeserializeOwned>(doc: &Document, out: &mut Vec<Violation>) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(&doc.value) {
        Ok(t) => Some(t),
        Err(e) => {
            if out.is_empty() {
                out.push(problem(e.path().to_string(), e.inner().to_string()));
            }
            None
        }
    }
}

/// The checks of one document on its own; adds what it holds to `bundle`
/// and returns, for an AgentRun that could be read, its index in
/// `bundle.runs`.
fn check_document(doc: &Document, bundle: &mut Bundle) -> (DocResult, Option<usize>) {
    let mut out = Vec::new();
    let v = &doc.value;
    let api = v["apiVersion"].as_str().unwrap_or_default();
    let kind = doc.kind();
    let group = api.split_once('/').map(|(g, _)| g).unwrap_or_default();
    let done = |problems: Vec<Violation>, skipped: Option<String>, note: Option<&str>| DocResult {
        label: doc.label(),
        skipped: skipped.filter(|_| problems.is_empty()),
        note: note.map(str::to_owned),
        problems,
    };
    if !v.is_object() {
        let found = schema::describe(v);
        out.push(problem(
            "",
            format!("expected a resource (apiVersion, kind, metadata, spec), found {found}"),
        ));
        return (done(out, None, None), None);
    }
    if kind.is_empty() {
        out.push(problem("kind", "missing (required)"));
        return (done(out, None, None), None);
    }
    let ours = SYMPOZIUM_KINDS.contains(&kind);
    if !ours && group == GROUP {
        let hint = schema::nearest(kind, SYMPOZIUM_KINDS)
            .map(|k| format!("; did you mean {k:?}?"))
            .unwrap_or_default();
        out.push(problem(
            "kind",
            format!("{kind:?} is not a {GROUP} kind{hint}"),
        ));
        return (done(out, None, None), None);
    }
    if ours && api != API_VERSION {
        out.push(problem(
            "apiVersion",
            if api.is_empty() {
                format!("missing (required: {API_VERSION})")
            } else {
                format!("{api:?} is not {API_VERSION}, the only version of {kind}")
            },
        ));
        return (done(out, None, None), None);
    }
    let secret = api == "v1" && kind == "Secret";
    if !ours && !secret {
        let why = format!("{kind} is not a kind agentpod reads");
        return (done(out, Some(why), None), None);
    }
    metadata_problems(doc, &mut out);
    let full = crds::schema_of(kind);
    if let Some(s) = full {
        schema::check(v, s, "", &mut out);
    }
    let mut run = None;
    match kind {
        "AgentRun" => {
            if let Some(r) = typed(doc, &mut out) {
                run = Some(bundle.runs.len());
                bundle.runs.push(r);
            }
        }
        "Agent" => bundle.agents.extend(typed(doc, &mut out)),
        "SkillPack" => {
            if let Some(p) = typed(doc, &mut out) {
                if out.is_empty() {
                    out.extend(own_fields(kind, doc.name(), validate_skill_pack(&p)));
                }
                bundle.skill_packs.push(p);
            }
        }
        "SympoziumPolicy" => bundle.policies.extend(typed(doc, &mut out)),
        "MCPServer" => bundle.mcp_servers.extend(typed(doc, &mut out)),
        "Model" => bundle.models.push(v.clone()),
        "Secret" => bundle.secrets.extend(typed(doc, &mut out)),
        _ => {
            let why = format!("agentpod does not use {kind} resources locally");
            return (done(out, Some(why), None), None);
        }
    }
    let note = full.is_none().then_some("as a reference: name and shape");
    (done(out, None, note), run)
}

/// `metadata`: a valid name, namespace, label keys and values, annotation
/// keys.
fn metadata_problems(doc: &Document, out: &mut Vec<Violation>) {
    let name = doc.name();
    if name.is_empty() {
        out.push(problem("metadata.name", "missing (required)"));
    } else if let Err(e) = names::dns_subdomain(name) {
        out.push(problem("metadata.name", e));
    }
    let meta = &doc.value["metadata"];
    if let Some(Err(e)) = meta["namespace"].as_str().map(names::dns_label) {
        out.push(problem("metadata.namespace", e));
    }
    for (what, check_value) in [("labels", true), ("annotations", false)] {
        for (k, val) in meta[what].as_object().into_iter().flatten() {
            let field = schema::child(&format!("metadata.{what}"), k);
            if let Err(e) = names::label_key(k) {
                out.push(problem(field.clone(), e));
            }
            if check_value && let Some(Err(e)) = val.as_str().map(names::label_value) {
                out.push(problem(field, e));
            }
        }
    }
}

/// Problems of a resource's own fields, named from the resource itself
/// (`SkillPack x.spec.y` → `spec.y`).
fn own_fields(kind: &str, name: &str, problems: Vec<Violation>) -> Vec<Violation> {
    let prefix = format!("{kind} {name}.");
    problems
        .into_iter()
        .map(|mut p| {
            if let Some(rest) = p.field.strip_prefix(&prefix) {
                p.field = rest.to_owned();
            }
            p
        })
        .collect()
}

/// What an AgentRun refers to that is not among the documents.
fn dangling(inputs: &Inputs, bundle: &Bundle) -> Vec<Violation> {
    let run = &inputs.run;
    let mut out = Vec::new();
    let names_of = |items: &mut dyn Iterator<Item = Option<&str>>| -> Vec<String> {
        items.flatten().map(str::to_owned).collect()
    };
    let missing = |field: String, kind: &str, name: &str, known: &[String]| {
        let hint = schema::nearest(name, known.iter().map(String::as_str))
            .map(|n| format!("; did you mean {n:?}?"))
            .unwrap_or_default();
        problem(
            field,
            format!("no {kind} {name:?} among the input documents{hint}"),
        )
    };
    if !run.spec.agent_ref.is_empty() && inputs.agent.is_none() {
        let known = names_of(&mut bundle.agents.iter().map(|a| a.metadata.name.as_deref()));
        out.push(missing(
            "spec.agentRef".into(),
            "Agent",
            &run.spec.agent_ref,
            &known,
        ));
    }
    let packs = names_of(
        &mut bundle
            .skill_packs
            .iter()
            .map(|p| p.metadata.name.as_deref()),
    );
    let from_agent = run.spec.skills.is_empty();
    for (i, r) in inputs.skills().iter().enumerate() {
        let name = r.pack_name();
        if name.is_empty() || BUILT_IN_PACKS.contains(&name) || packs.iter().any(|p| p == name) {
            continue;
        }
        let field = if from_agent {
            format!("Agent {}.spec.skills[{i}].skillPackRef", run.spec.agent_ref)
        } else {
            format!("spec.skills[{i}].skillPackRef")
        };
        out.push(missing(field, "SkillPack", name, &packs));
    }
    if let Some(a) = &inputs.agent {
        let aname = a.metadata.name.as_deref().unwrap_or_default();
        if !a.spec.policy_ref.is_empty() && inputs.policy.is_none() {
            let known = names_of(&mut bundle.policies.iter().map(|p| p.metadata.name.as_deref()));
            out.push(missing(
                format!("Agent {aname}.spec.policyRef"),
                "SympoziumPolicy",
                &a.spec.policy_ref,
                &known,
            ));
        }
        let servers = names_of(
            &mut bundle
                .mcp_servers
                .iter()
                .map(|m| m.metadata.name.as_deref()),
        );
        for (i, s) in a.spec.mcp_servers.iter().enumerate() {
            if s.url.is_empty() && !servers.contains(&s.name) {
                out.push(missing(
                    format!("Agent {aname}.spec.mcpServers[{i}].name"),
                    "MCPServer",
                    &s.name,
                    &servers,
                ));
            }
        }
    }
    let model_ref = &run.spec.model.model_ref;
    if !model_ref.is_empty() {
        let known: Vec<String> = bundle
            .models
            .iter()
            .filter_map(|m| m["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        if !known.contains(model_ref) {
            out.push(missing(
                "spec.model.modelRef".into(),
                "Model",
                model_ref,
                &known,
            ));
        }
    }
    out
}

/// The checks of an AgentRun against the other documents: the webhook and
/// name rules, its references, and what render refuses. Problems already
/// reported with another document (a SkillPack's own) are not repeated.
fn check_run(inputs: &Inputs, bundle: &Bundle, reported: &BTreeSet<String>) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    let mut broken_packs: BTreeSet<String> = BTreeSet::new();
    let mut add = |p: Violation| {
        if reported.contains(&p.to_string()) {
            if let Some(pack) = p
                .field
                .strip_prefix("SkillPack ")
                .and_then(|r| r.split_once('.'))
            {
                broken_packs.insert(pack.0.to_owned());
            }
        } else if !out.contains(&p) {
            out.push(p);
        }
    };
    for p in validate(inputs) {
        add(p);
    }
    for p in dangling(inputs, bundle) {
        add(p);
    }
    // What render refuses follows from a field: said only when that field
    // has no problem yet.
    if let Some(e) = render(inputs, &RenderOptions::default()).err()
        && !out.iter().any(|o| o.field == e.field())
    {
        out.push(problem(e.field(), e.problem()));
    }
    for pack in broken_packs {
        out.push(problem(
            "spec.skills",
            format!("uses SkillPack {pack}, which has problems (reported with it)"),
        ));
    }
    out
}

/// Reads and checks every source.
pub fn check(sources: &[Source]) -> Checked {
    let mut checked = Checked::default();
    // Each result with its document's index (none: an unreadable file).
    let mut results: Vec<(Option<usize>, DocResult)> = Vec::new();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    // kind, namespace, name → where it was first seen.
    let mut seen: std::collections::BTreeMap<(String, String, String), String> = Default::default();
    for s in sources {
        for d in split(s, &mut results) {
            let (mut r, run) = check_document(&d, &mut checked.bundle);
            let ns = d.value["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default();
            let key = (d.kind().to_owned(), ns.to_owned(), d.name().to_owned());
            if !key.2.is_empty() && r.skipped.is_none() {
                match seen.get(&key) {
                    Some(first) => r.problems.push(problem(
                        "metadata.name",
                        format!(
                            "a second {} {:?} in the input (the first: {first})",
                            key.0, key.2
                        ),
                    )),
                    None => {
                        seen.insert(key, d.place());
                    }
                }
            }
            if let Some(run) = run {
                runs.push((results.len(), run));
            }
            results.push((Some(checked.documents.len()), r));
            checked.documents.push(d);
        }
    }
    // A pack's problems are said with the pack; a run using it would
    // repeat them.
    let reported: BTreeSet<String> = results
        .iter()
        .filter_map(|(d, r)| Some((&checked.documents[(*d)?], r)))
        .filter(|(d, _)| d.kind() == "SkillPack")
        .flat_map(|(d, r)| {
            r.problems.iter().map(move |p| {
                let mut p = p.clone();
                p.field = format!("SkillPack {}.{}", d.name(), p.field);
                p.to_string()
            })
        })
        .collect();
    for (r, run) in runs {
        let inputs = checked.bundle.inputs_for(&checked.bundle.runs[run]);
        let own = &mut results[r].1.problems;
        let wrong: BTreeSet<String> = own.iter().map(|p| p.field.clone()).collect();
        // A field the document's own checks found wrong is said once.
        own.extend(
            check_run(&inputs, &checked.bundle, &reported)
                .into_iter()
                .filter(|p| !wrong.contains(&p.field)),
        );
    }
    checked.results = results.into_iter().map(|(_, r)| r).collect();
    checked
}

/// The resources of `checked` when every document is fine, else the
/// problem lines.
pub fn bundle_or_problems(checked: Checked) -> Result<(Bundle, Vec<Document>), Vec<String>> {
    if checked.ok() {
        Ok((checked.bundle, checked.documents))
    } else {
        Err(checked.problem_lines())
    }
}
