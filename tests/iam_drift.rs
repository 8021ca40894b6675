//! IAM drift: the function's role in `template.yaml` grants exactly the AWS operations the code
//! calls, no more and no fewer.
//!
//! The code's side is `op::ALL` in src/aws/mod.rs, kept honest by scanning the adapters: every
//! `op::` constant is used by one, and every SDK call an adapter makes is in the table. The
//! template's side is the role's inline policy, read with every `!If` branch (the union), and
//! then evaluated for given parameter values, so the conditional grants (`ecr:PutImage` only when
//! `Actions` includes `tag`, and so on) are checked by what they do, not by how they are spelled.
//!
//! When a test here fails, change the template and the code together: add the IAM action next
//! to the SDK call that needs it, or remove both.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use ecr_platform_guard::aws::op;
use serde_json::{json, Map, Value};

/// The services whose actions are the code's own calls: these must match `op::ALL` exactly.
const CODE_SERVICES: [&str; 5] = ["ecr", "ecs", "apprunner", "lambda", "sns"];

/// What the Lambda platform does with the function's role on the code's behalf. Nothing in
/// src/ calls these; each is here for a reason, and anything else in these services is drift.
const PLATFORM_ACTIONS: [(&str, &str); 7] = [
    ("logs:CreateLogStream", "Lambda writes the function's logs"),
    ("logs:PutLogEvents", "Lambda writes the function's logs"),
    (
        "sqs:SendMessage",
        "Lambda sends failed async invocations to the OnFailure queue",
    ),
    (
        "kms:GenerateDataKey",
        "SNS encrypts a publish to the CMK-encrypted topic",
    ),
    ("kms:Decrypt", "SNS encrypts a publish to the CMK-encrypted topic"),
    ("xray:PutTraceSegments", "Lambda's active tracing"),
    ("xray:PutTelemetryRecords", "Lambda's active tracing"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ------------------------------------------------------------------ the template

/// template.yaml with CloudFormation's short tags turned into their long JSON form
/// (`!Ref X` → `{"Ref": "X"}`, `!If [..]` → `{"Fn::If": [..]}`, `!GetAtt A.B` →
/// `{"Fn::GetAtt": ["A", "B"]}`), so both spellings read the same.
struct Template(Value);

impl Template {
    fn load() -> Template {
        Template::parse(&std::fs::read_to_string(root().join("template.yaml")).expect("read template.yaml"))
    }

    fn parse(text: &str) -> Template {
        let yaml: serde_norway::Value =
            serde_norway::from_str(text).expect("template.yaml is not valid YAML");
        Template(long_form(yaml))
    }

    fn resources(&self) -> &Map<String, Value> {
        self.0["Resources"]
            .as_object()
            .expect("template has no Resources")
    }

    fn resource(&self, id: &str) -> &Value {
        self.resources()
            .get(id)
            .unwrap_or_else(|| panic!("template.yaml has no resource {id}"))
    }

    /// The one AWS::Serverless::Function, and the logical ID of the role it runs with.
    fn function_and_role(&self) -> (&str, &str) {
        let functions: Vec<(&String, &Value)> = self
            .resources()
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function" || r["Type"] == "AWS::Lambda::Function")
            .collect();
        assert_eq!(functions.len(), 1, "expected one function in template.yaml");
        let (id, function) = functions[0];
        let props = &function["Properties"];
        for property in ["Policies", "PermissionsBoundary"] {
            assert!(
                props.get(property).is_none(),
                "{id} has `{property}`: the function's permissions must all be in its own role's \
                 inline policy, where this test reads them"
            );
        }
        let role = match &props["Role"] {
            Value::Object(o) if o.contains_key("Fn::GetAtt") => o["Fn::GetAtt"][0].as_str(),
            other => panic!("{id}.Role must be !GetAtt <a role in this template>.Arn, found {other}"),
        }
        .expect("Fn::GetAtt names a resource");
        assert_eq!(self.resource(role)["Type"], "AWS::IAM::Role", "{id}.Role");
        (id.as_str(), role)
    }

    fn parameter_defaults(&self) -> HashMap<String, String> {
        self.0["Parameters"]
            .as_object()
            .expect("template has Parameters")
            .iter()
            .map(|(name, p)| (name.clone(), scalar(&p["Default"]).unwrap_or_default()))
            .collect()
    }

    fn allowed_values(&self, parameter: &str) -> Vec<String> {
        self.0["Parameters"][parameter]["AllowedValues"]
            .as_array()
            .unwrap_or_else(|| panic!("parameter {parameter} has no AllowedValues"))
            .iter()
            .map(|v| scalar(v).expect("scalar allowed value"))
            .collect()
    }
}

/// serde_norway's YAML value → CloudFormation's JSON form.
fn long_form(yaml: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).expect("number"),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (scalar(&long_form(k)).expect("scalar mapping key"), long_form(v)))
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let name = tagged.tag.to_string();
            let name = name.trim_start_matches('!');
            let value = long_form(tagged.value);
            match (name, value) {
                ("Ref", v) => json!({ "Ref": v }),
                ("Condition", v) => json!({ "Condition": v }),
                ("GetAtt", Value::String(s)) => {
                    let (resource, attribute) = s.split_once('.').expect("!GetAtt Resource.Attribute");
                    json!({ "Fn::GetAtt": [resource, attribute] })
                }
                (other, v) => json!({ format!("Fn::{other}"): v }),
            }
        }
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parameter values for evaluating conditions: the defaults, with some overridden.
struct Params<'t> {
    template: &'t Template,
    values: HashMap<String, String>,
}

impl<'t> Params<'t> {
    fn defaults(template: &'t Template) -> Params<'t> {
        Params {
            template,
            values: template.parameter_defaults(),
        }
    }

    fn with(mut self, name: &str, value: &str) -> Params<'t> {
        assert!(
            self.values.contains_key(name),
            "template.yaml has no parameter {name}"
        );
        self.values.insert(name.to_string(), value.to_string());
        self
    }

    fn condition(&self, name: &str) -> bool {
        let expr = self
            .template
            .0
            .get("Conditions")
            .and_then(|c| c.get(name))
            .unwrap_or_else(|| panic!("template.yaml has no condition {name}"));
        self.eval(expr)
    }

    fn eval(&self, expr: &Value) -> bool {
        let (function, args) = single_key(expr).unwrap_or_else(|| panic!("not a condition: {expr}"));
        let list = || {
            args.as_array()
                .unwrap_or_else(|| panic!("{function} takes a list: {expr}"))
        };
        match function {
            "Condition" => self.condition(args.as_str().expect("condition name")),
            "Fn::Not" => !self.eval(&list()[0]),
            "Fn::And" => list().iter().all(|e| self.eval(e)),
            "Fn::Or" => list().iter().any(|e| self.eval(e)),
            "Fn::Equals" => self.resolve(&list()[0]) == self.resolve(&list()[1]),
            other => panic!("condition function {other} is not understood by this test: {expr}"),
        }
    }

    fn resolve(&self, v: &Value) -> String {
        match single_key(v) {
            Some(("Ref", Value::String(name))) => self
                .values
                .get(name)
                .unwrap_or_else(|| panic!("condition refers to {name}, which is not a parameter"))
                .clone(),
            _ => scalar(v).unwrap_or_else(|| panic!("cannot compare {v} in a condition")),
        }
    }
}

fn single_key(v: &Value) -> Option<(&str, &Value)> {
    match v.as_object() {
        Some(o) if o.len() == 1 => o.iter().next().map(|(k, v)| (k.as_str(), v)),
        _ => None,
    }
}

/// The values a property may take: `Fn::If` expanded (both branches when `params` is None,
/// the chosen one otherwise), `AWS::NoValue` dropped, lists flattened. Each value comes with the
/// conditions it sits under (`!Name` for an else branch).
fn expand<'v>(v: &'v Value, params: Option<&Params>, under: &[String]) -> Vec<(&'v Value, Vec<String>)> {
    if let Some(("Fn::If", Value::Array(args))) = single_key(v) {
        assert_eq!(args.len(), 3, "Fn::If takes [condition, then, else]: {v}");
        let name = args[0].as_str().expect("Fn::If names a condition");
        let mut out = Vec::new();
        for (branch, value, label) in [
            (true, &args[1], name.to_string()),
            (false, &args[2], format!("!{name}")),
        ] {
            if params.is_none_or(|p| p.condition(name) == branch) {
                let mut path = under.to_vec();
                path.push(label);
                out.extend(expand(value, params, &path));
            }
        }
        return out;
    }
    if let Some(("Ref", Value::String(name))) = single_key(v) {
        if name == "AWS::NoValue" {
            return Vec::new();
        }
    }
    if let Value::Array(items) = v {
        return items
            .iter()
            .flat_map(|item| expand(item, params, under))
            .collect();
    }
    vec![(v, under.to_vec())]
}

#[derive(Debug)]
struct Statement {
    sid: String,
    actions: Vec<String>,
    resource: Value,
    /// The Fn::If conditions the statement is granted under.
    under: Vec<String>,
}

impl Statement {
    fn describe(&self) -> String {
        let under = if self.under.is_empty() {
            "always".to_string()
        } else {
            format!("under {}", self.under.join(" and "))
        };
        format!("statement {:?} ({under})", self.sid)
    }
}

/// The Allow statements of a role's inline policies, for every parameter value (None) or for
/// the given ones.
fn role_statements(template: &Template, role: &str, params: Option<&Params>) -> Vec<Statement> {
    let props = &template.resource(role)["Properties"];
    assert!(
        props.get("ManagedPolicyArns").is_none(),
        "{role} has ManagedPolicyArns: managed policies grant actions this test cannot see; \
         write what the function needs into its inline policy"
    );
    let mut statements = Vec::new();
    for (policy, under) in expand(&props["Policies"], params, &[]) {
        for (document, under) in expand(&policy["PolicyDocument"], params, &under) {
            for (s, under) in expand(&document["Statement"], params, &under) {
                let sid = s["Sid"].as_str().unwrap_or("<no Sid>").to_string();
                assert!(
                    s.get("NotAction").is_none() && s.get("NotResource").is_none(),
                    "{role} statement {sid:?}: NotAction/NotResource grant more than they say"
                );
                assert_eq!(
                    s["Effect"], "Allow",
                    "{role} statement {sid:?}: only Allow is expected"
                );
                let actions = expand(&s["Action"], params, &under)
                    .into_iter()
                    .map(|(a, _)| {
                        a.as_str()
                            .unwrap_or_else(|| panic!("{role} statement {sid:?}: action {a} is not a string"))
                            .to_string()
                    })
                    .collect();
                statements.push(Statement {
                    sid,
                    actions,
                    resource: s["Resource"].clone(),
                    under,
                });
            }
        }
    }
    statements
}

/// Every action granted by the statements, with the statements that grant it.
fn granted(statements: &[Statement]) -> BTreeMap<String, Vec<&Statement>> {
    let mut map: BTreeMap<String, Vec<&Statement>> = BTreeMap::new();
    for s in statements {
        for a in &s.actions {
            map.entry(a.clone()).or_default().push(s);
        }
    }
    map
}

fn service(action: &str) -> &str {
    action.split_once(':').map_or(action, |(s, _)| s)
}

fn code_actions(statements: &[Statement]) -> BTreeSet<String> {
    granted(statements)
        .into_keys()
        .filter(|a| CODE_SERVICES.contains(&service(a)))
        .collect()
}

/// The function's role, its logical ID, and its statements over every parameter value.
fn function_role() -> (Template, String, Vec<Statement>) {
    let template = Template::load();
    let role = template.function_and_role().1.to_string();
    let statements = role_statements(&template, &role, None);
    (template, role, statements)
}

fn listed(items: &BTreeSet<String>) -> String {
    items.iter().cloned().collect::<Vec<_>>().join(", ")
}

// ------------------------------------------------------------------ the code

fn op_all() -> BTreeSet<String> {
    let all: BTreeSet<String> = op::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(all.len(), op::ALL.len(), "op::ALL lists an operation twice");
    all
}

/// `NAME → "service:Operation"` for every `pub const` in src/aws/mod.rs's `op` module (but
/// `ALL` itself).
fn op_constants() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("src/aws/mod.rs")).expect("read src/aws/mod.rs");
    let start = text
        .find("pub mod op {")
        .expect("src/aws/mod.rs has `pub mod op {`");
    let body = &text[start..];
    let body = &body[..body.find("\n}").expect("end of `mod op`")];
    let mut constants = BTreeMap::new();
    for line in body.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("pub const ") else {
            continue;
        };
        let Some((name, value)) = rest.split_once(": &str = ") else {
            continue;
        };
        let value = value.trim_end_matches(';').trim_matches('"');
        constants.insert(name.to_string(), value.to_string());
    }
    assert!(
        !constants.is_empty(),
        "no `pub const NAME: &str = \"...\";` found in `mod op`"
    );
    constants
}

/// The adapters: every .rs file under src/aws except mod.rs (which holds the table), with
/// `//` comments removed.
fn adapter_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src/aws") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let dir = root().join("src/aws");
    let mut files = Vec::new();
    walk(&dir, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| p != &dir.join("mod.rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read adapter");
            let code: Vec<&str> = text
                .lines()
                .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
                .collect();
            (
                p.strip_prefix(root()).unwrap().display().to_string(),
                code.join("\n"),
            )
        })
        .collect()
}

/// Identifiers that follow `op::` in the text.
fn op_uses(text: &str) -> BTreeSet<String> {
    text.match_indices("op::")
        .map(|(i, _)| {
            text[i + 4..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// SDK operations called as `.client.some_operation(` (whitespace and line breaks allowed
/// between the parts), as IAM names them: `ecs.rs` + `list_clusters` → `ecs:ListClusters`.
fn sdk_calls(file: &str, text: &str) -> BTreeSet<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let service = Path::new(file).file_stem().unwrap().to_str().unwrap().to_string();
    let mut calls = BTreeSet::new();
    for (i, _) in compact.match_indices(".client.") {
        let rest = &compact[i + ".client.".len()..];
        let method: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if method.is_empty() || !rest[method.len()..].starts_with('(') {
            continue;
        }
        let pascal: String = method
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        calls.insert(format!("{service}:{pascal}"));
    }
    calls
}

// ------------------------------------------------------------------ the checks

#[test]
fn role_grants_exactly_the_operations_the_code_calls() {
    let (_, role, statements) = function_role();
    let granted = code_actions(&statements);
    let called = op_all();
    let missing: BTreeSet<String> = called.difference(&granted).cloned().collect();
    let extra: BTreeSet<String> = granted.difference(&called).cloned().collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "the code calls {} but template.yaml's {role} does not grant it; add it to the role's \
             policy, as narrowly scoped as the service allows",
            listed(&missing)
        ));
    }
    if !extra.is_empty() {
        problems.push(format!(
            "template.yaml's {role} grants {} but no code calls it (it is not in op::ALL in \
             src/aws/mod.rs); remove it from the role",
            listed(&extra)
        ));
    }
    assert!(problems.is_empty(), "IAM drift:\n- {}", problems.join("\n- "));
}

#[test]
fn the_other_permissions_are_what_the_lambda_platform_needs() {
    let (_, role, statements) = function_role();
    let known: BTreeMap<&str, &str> = PLATFORM_ACTIONS.into_iter().collect();
    let mut unexpected = Vec::new();
    for (action, by) in granted(&statements) {
        if CODE_SERVICES.contains(&service(&action)) || known.contains_key(action.as_str()) {
            continue;
        }
        let sids: Vec<String> = by.iter().map(|s| s.describe()).collect();
        unexpected.push(format!("{action} ({})", sids.join("; ")));
    }
    assert!(
        unexpected.is_empty(),
        "template.yaml's {role} grants actions that neither the code (op::ALL) nor the Lambda \
         platform (PLATFORM_ACTIONS in this test) needs:\n- {}",
        unexpected.join("\n- ")
    );
}

#[test]
fn every_operation_constant_is_listed_and_used_by_an_adapter() {
    let constants = op_constants();
    let values: BTreeSet<String> = constants.values().cloned().collect();
    let all = op_all();
    let not_in_all: BTreeSet<String> = values.difference(&all).cloned().collect();
    assert!(
        not_in_all.is_empty(),
        "src/aws/mod.rs: op constants {} are missing from op::ALL",
        listed(&not_in_all)
    );

    let used: BTreeSet<String> = adapter_sources()
        .iter()
        .flat_map(|(_, text)| op_uses(text))
        .collect();
    let unused: Vec<String> = constants
        .iter()
        .filter(|(name, _)| !used.contains(*name))
        .map(|(name, value)| format!("op::{name} ({value})"))
        .collect();
    assert!(
        unused.is_empty(),
        "no adapter in src/aws uses {}: the code does not call it, so remove it from `mod op` \
         and op::ALL (and its grant from template.yaml)",
        unused.join(", ")
    );
}

#[test]
fn every_sdk_call_in_the_adapters_is_a_listed_operation() {
    let all = op_all();
    let mut seen = BTreeSet::new();
    let mut unlisted = Vec::new();
    for (file, text) in adapter_sources() {
        for call in sdk_calls(&file, &text) {
            if !all.contains(&call) {
                unlisted.push(format!("{call} (called in {file})"));
            }
            seen.insert(call);
        }
    }
    assert!(
        unlisted.is_empty(),
        "adapters call SDK operations that op::ALL does not list, so the role will not grant \
         them:\n- {}\nadd an op:: constant for each, use it when mapping its errors, and grant it in \
         template.yaml",
        unlisted.join("\n- ")
    );
    // The scan itself works: it finds every listed operation as a call somewhere.
    let not_found: BTreeSet<String> = all.difference(&seen).cloned().collect();
    assert!(
        not_found.is_empty(),
        "op::ALL lists {} but no adapter calls it as `.client.<operation>(`",
        listed(&not_found)
    );
}

#[test]
fn put_image_is_granted_only_when_actions_include_tag() {
    let template = Template::load();
    let (_, role) = template.function_and_role();
    for value in template.allowed_values("Actions") {
        let params = Params::defaults(&template).with("Actions", &value);
        let statements = role_statements(&template, role, Some(&params));
        let grants = granted(&statements).contains_key(op::ECR_PUT_IMAGE);
        let tags = value.split(',').any(|a| a == "tag");
        assert_eq!(
            grants,
            tags,
            "with Actions={value}, ecr:PutImage is {} but the function {} tag: grant it under a \
             condition on the Actions parameter",
            if grants { "granted" } else { "not granted" },
            if tags { "does" } else { "does not" },
        );
    }
    // And the grant is never unconditional or on every resource.
    let all = role_statements(&template, role, None);
    for s in all
        .iter()
        .filter(|s| s.actions.iter().any(|a| a == op::ECR_PUT_IMAGE))
    {
        assert!(
            !s.under.is_empty(),
            "{}: ecr:PutImage must sit under a condition",
            s.describe()
        );
        assert_ne!(
            s.resource,
            json!("*"),
            "{}: ecr:PutImage on every resource",
            s.describe()
        );
    }
}

#[test]
fn publish_is_granted_only_when_alerting_and_only_on_the_topic() {
    let template = Template::load();
    let (_, role) = template.function_and_role();
    for value in template.allowed_values("Actions") {
        let params = Params::defaults(&template).with("Actions", &value);
        let statements = role_statements(&template, role, Some(&params));
        let grants = granted(&statements).contains_key(op::SNS_PUBLISH);
        let alerts = value.split(',').any(|a| a == "alert");
        assert_eq!(
            grants,
            alerts,
            "with Actions={value}, sns:Publish is {} but the function {} alert",
            if grants { "granted" } else { "not granted" },
            if alerts { "does" } else { "does not" },
        );
    }
    let parameters = &template.0["Parameters"];
    let all = role_statements(&template, role, None);
    let publishing: Vec<&Statement> = all
        .iter()
        .filter(|s| s.actions.iter().any(|a| a == op::SNS_PUBLISH))
        .collect();
    assert!(!publishing.is_empty());
    for s in publishing {
        assert!(
            s.actions.iter().all(|a| a == op::SNS_PUBLISH),
            "{}: keep sns:Publish in a statement of its own, on the topic",
            s.describe()
        );
        // Every value the resource can take is the created topic or the topic ARN parameter.
        for (resource, _) in expand(&s.resource, None, &[]) {
            let target = match single_key(resource) {
                Some(("Ref", Value::String(name))) => name.as_str(),
                _ => panic!(
                    "{}: sns:Publish must be on the alert topic (!Ref to it or to the topic ARN \
                     parameter), found {resource}",
                    s.describe()
                ),
            };
            let is_topic = template
                .resources()
                .get(target)
                .is_some_and(|r| r["Type"] == "AWS::SNS::Topic");
            let is_topic_parameter = parameters
                .get(target)
                .and_then(|p| p["AllowedPattern"].as_str())
                .is_some_and(|pattern| pattern.contains(":sns:") && !pattern.contains(":sns:.*"));
            assert!(
                is_topic || is_topic_parameter,
                "{}: sns:Publish on {target}, which is neither an AWS::SNS::Topic of this template \
                 nor a parameter whose AllowedPattern admits only SNS topic ARNs",
                s.describe()
            );
        }
    }
}

#[test]
fn consumer_permissions_follow_the_consumers_parameter() {
    let template = Template::load();
    let (_, role) = template.function_and_role();
    for value in template.allowed_values("Consumers") {
        let params = Params::defaults(&template).with("Consumers", &value);
        let granted = code_actions(&role_statements(&template, role, Some(&params)));
        for (kind, services) in [("ecs", "ecs"), ("apprunner", "apprunner"), ("lambda", "lambda")] {
            let wanted: BTreeSet<String> = if value.split(',').any(|k| k == kind) {
                op::ALL
                    .iter()
                    .filter(|a| service(a) == services)
                    .map(|a| a.to_string())
                    .collect()
            } else {
                BTreeSet::new()
            };
            let got: BTreeSet<String> = granted
                .iter()
                .filter(|a| service(a) == services)
                .cloned()
                .collect();
            assert_eq!(
                got,
                wanted,
                "with Consumers={value}, the role's {services} actions should be exactly [{}]",
                listed(&wanted)
            );
        }
    }
}

#[test]
fn no_role_in_the_template_grants_a_wildcard_action() {
    // Roles only: the topic's KMS key policy keeps AWS's default `kms:*` for the account root,
    // which grants nothing by itself (it lets IAM policies grant use of the key).
    let template = Template::load();
    let mut wildcards = Vec::new();
    for (id, r) in template.resources() {
        if r["Type"] != "AWS::IAM::Role" {
            continue;
        }
        for s in role_statements(&template, id, None) {
            for a in s.actions.iter().filter(|a| a.contains('*')) {
                wildcards.push(format!("{id} {}: {a}", s.describe()));
            }
        }
    }
    assert!(
        wildcards.is_empty(),
        "wildcard actions:\n- {}",
        wildcards.join("\n- ")
    );
}

#[test]
fn nothing_else_attaches_permissions_to_the_function_role() {
    let template = Template::load();
    let (_, role) = template.function_and_role();
    let reference = json!({ "Ref": role });
    for (id, r) in template.resources() {
        let kind = r["Type"].as_str().unwrap_or_default();
        if !matches!(
            kind,
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::IAM::RolePolicy"
        ) {
            continue;
        }
        let props = &r["Properties"];
        let roles = props["Roles"].as_array().cloned().unwrap_or_default();
        assert!(
            !roles.contains(&reference) && props["RoleName"] != reference,
            "{id} ({kind}) attaches permissions to {role}: put them in the role's inline policy, \
             where this test reads them"
        );
    }
}

// ------------------------------------------------------------------ the reader itself

#[test]
fn the_reader_understands_short_and_long_intrinsics() {
    let template = Template::parse(
        r#"
Parameters:
  Actions: {Type: String, Default: alert, AllowedValues: [alert, tag]}
Conditions:
  Tag: !Equals [!Ref Actions, tag]
  NotTag: {"Fn::Not": [{"Condition": Tag}]}
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - Sid: Always
                Effect: Allow
                Action: [ecr:BatchGetImage]
                Resource: !Sub arn:${AWS::Partition}:ecr:::repository/*
              - !If
                - Tag
                - {Sid: Short, Effect: Allow, Action: ecr:PutImage, Resource: x}
                - !Ref AWS::NoValue
              - Fn::If:
                  - NotTag
                  - {Sid: Long, Effect: Allow, Action: sns:Publish, Resource: !GetAtt Topic.Arn}
                  - {Ref: AWS::NoValue}
"#,
    );
    let actions = |value: &str| -> Vec<String> {
        let params = Params::defaults(&template).with("Actions", value);
        granted(&role_statements(&template, "Role", Some(&params)))
            .into_keys()
            .collect()
    };
    assert_eq!(actions("alert"), ["ecr:BatchGetImage", "sns:Publish"]);
    assert_eq!(actions("tag"), ["ecr:BatchGetImage", "ecr:PutImage"]);
    let all = role_statements(&template, "Role", None);
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].under, ["Tag"]);
    assert_eq!(all[2].resource, json!({"Fn::GetAtt": ["Topic", "Arn"]}));

    let scanned = sdk_calls(
        "src/aws/ecs.rs",
        "self\n .client\n   .list_clusters()\n; self.client.describe_services().send()",
    );
    assert_eq!(
        scanned.into_iter().collect::<Vec<_>>(),
        ["ecs:DescribeServices", "ecs:ListClusters"]
    );
}
