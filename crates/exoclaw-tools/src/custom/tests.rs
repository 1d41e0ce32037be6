//! Custom tool definitions: refusals with the reason, arguments as single
//! words, option injection refused, the quoted form, the environment.

use super::*;
use serde_json::json;

fn def(command: &[&str]) -> CustomToolDef {
    CustomToolDef {
        name: "greet".into(),
        description: "say something".into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "n": {"type": "integer"},
                "list": {"type": "array"}
            },
            "required": ["text"],
            "additionalProperties": false
        }),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        env: BTreeMap::new(),
        secret_env: Vec::new(),
        timeout_sec: None,
    }
}

fn refused(d: &CustomToolDef, why: &str) {
    let e = d.validate().unwrap_err();
    assert!(e.contains(why), "{e:?} does not say {why:?}");
}

#[test]
fn bad_definitions_are_refused_with_the_reason() {
    assert!(def(&["echo", "{text}", "--count={n}"]).validate().is_ok());
    refused(&def(&[]), "command: must be");
    refused(&def(&["{text}"]), "program must be a literal");
    refused(&def(&["echo", "{nope}"]), "{nope} names no property");
    refused(&def(&["echo", "{list}"]), "must be a string, number");
    refused(&def(&["echo", "{text"]), "not closed");
    refused(&def(&["echo", "a}b"]), "lone '}'");
    refused(&def(&["echo", "{te xt}"]), "in a placeholder");
    let mut d = def(&["echo"]);
    d.name = "a__b".into();
    refused(&d, "'__'");
    d.name = "no spaces".into();
    refused(&d, "name:");
    let mut d = def(&["echo"]);
    d.parameters = json!({"type": "object", "properties": {"x": {"type": "no-such-type"}}});
    refused(&d, "parameters:");
    d.parameters = json!({"type": "string"});
    refused(&d, "object schema");
    let mut d = def(&["echo"]);
    d.env.insert("LD_PRELOAD".into(), "{text}".into());
    refused(&d, "reserved");
    let mut d = def(&["echo"]);
    d.env.insert("lower".into(), "{text}".into());
    refused(&d, "not an environment name");
    let mut d = def(&["echo"]);
    d.secret_env = vec!["API_TOKEN".into(), "API_TOKEN".into()];
    refused(&d, "set twice");
    let mut d = def(&["echo"]);
    d.timeout_sec = Some(0);
    refused(&d, "timeout_sec");
}

#[test]
fn arguments_stay_one_word_each() {
    let d = def(&["grep", "-n", "--", "{text}", "x{{y}}"]);
    for hostile in [
        "; rm -rf /",
        "$(touch pwned)",
        "`id`",
        "a\nrm -rf /",
        "'quoted' \"too\"",
        "-rf",
        "--exec=sh",
    ] {
        let r = d.render(&json!({ "text": hostile })).unwrap();
        assert_eq!(r.argv, ["grep", "-n", "--", hostile, "x{y}"]);
    }
}

#[test]
fn an_option_from_an_argument_is_refused_before_a_double_dash() {
    let d = def(&["tool", "{text}", "--count={n}"]);
    for hostile in ["--exec=sh", "-rf"] {
        let e = d.render(&json!({ "text": hostile })).unwrap_err();
        assert_eq!(e.code, "tool.invalid_args");
        assert!(e.message.contains("option"), "{}", e.message);
    }
    // Inside a word after its option, a dash is just a value.
    let r = d.render(&json!({"text": "ok", "n": -3})).unwrap();
    assert_eq!(r.argv, ["tool", "ok", "--count=-3"]);
    // An absent optional argument drops its word.
    let r = d.render(&json!({"text": "ok"})).unwrap();
    assert_eq!(r.argv, ["tool", "ok"]);
    let e = d.render(&json!({"text": "a\0b"})).unwrap_err();
    assert!(e.message.contains("NUL"), "{}", e.message);
}

#[test]
fn the_shown_command_quotes_every_word() {
    let d = def(&["echo", "{text}"]);
    let r = d.render(&json!({"text": "it's $(x); y"})).unwrap();
    assert_eq!(r.shown(), r"echo 'it'\''s $(x); y'");
}

#[test]
fn arguments_reach_the_environment() {
    let mut d = def(&["printenv", "GREETING"]);
    d.env.insert("GREETING".into(), "hello {text}".into());
    d.env.insert("COUNT".into(), "{n}".into());
    let r = d.render(&json!({"text": "$(id)"})).unwrap();
    assert_eq!(r.env, [("GREETING".to_owned(), "hello $(id)".to_owned())]);
}
