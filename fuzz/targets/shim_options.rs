//! The shim's configuration: the `runtimeoptions.v1.Options` protobuf
//! containerd sends in Create's options (decoded by hand in the shim), the
//! JSON config it carries or names, and the config saved in the bundle.
//!
//! The shim is a binary crate, so its config module (and the error type it
//! uses) is compiled in here from its source.
//!
//! Input: first byte 0 = the rest is the protobuf, else the whole input is
//! a JSON config.

#[allow(dead_code)]
#[path = "../../shim/src/errors.rs"]
mod errors;

#[allow(dead_code)]
#[path = "../../shim/src/config.rs"]
mod config;

use containerd_shim::protos::protobuf::well_known_types::any::Any;

fn main() {
    let bundle = pinc_fuzz::scratch().join("bundle");
    std::fs::create_dir_all(&bundle).expect("bundle");
    afl::fuzz!(|data: &[u8]| {
        let (json, proto) = match data.split_first() {
            Some((0, rest)) => (None, Some(rest)),
            _ => (Some(data), None),
        };
        if let Some(bytes) = proto {
            let Ok(opts) = config::RuntimeOptions::decode(bytes) else {
                return;
            };
            // With a path and no body, Create reads the file it names: not
            // fuzzed here (any file on this machine).
            if opts.config_body.is_empty() && !opts.config_path.is_empty() {
                return;
            }
            let any = Any {
                type_url: "runtimeoptions.v1.Options".to_string(),
                value: bytes.to_vec(),
                ..Default::default()
            };
            let _ = config::ShimConfig::from_options(Some(&any));
        }
        if let Some(bytes) = json {
            let Ok(c) = serde_json::from_slice::<config::ShimConfig>(bytes) else {
                return;
            };
            // What Create saves, `delete` after a shim crash reads back.
            c.save(&bundle).expect("save");
            assert_eq!(
                config::ShimConfig::saved(&bundle),
                c,
                "saved config changed"
            );
            let _ = c.state_root("k8s.io");
        }
    });
}
