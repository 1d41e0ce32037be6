//! Fuzz the shell policy: any string through `shell::check` never panics,
//! and every allowed command re-parses — its canonical text is allowed
//! again and renders to the same text (a fixpoint).

#![no_main]

use exoclaw_tools::shell::{ShellPolicyContext, check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(command) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = ShellPolicyContext {
        data_dir: Some("/home/u/.exoclaw".into()),
        workspace: Some("/home/u/.exoclaw/workspace/default/u".into()),
        home: None,
        gateway_port: Some(18789),
    };
    if let Ok(parsed) = check(command, &ctx) {
        let canonical = parsed.canonical();
        match check(&canonical, &ctx) {
            Ok(again) => assert_eq!(again.canonical(), canonical, "render is not a fixpoint"),
            Err(d) => {
                panic!("allowed {command:?} but its canonical form {canonical:?} is refused: {d}")
            }
        }
        assert!(
            check(parsed.command(), &ctx).is_ok(),
            "the normalised command is refused"
        );
    }
});
