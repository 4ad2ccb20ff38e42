//! `maestro plugin`: write, try and measure plugins without a hub.
//!
//! - `new WORLD NAME [--lang rust|python|js]` writes a project that builds as it is: the WIT
//!   contract, a plugin with a test, a README, and for Rust a copy of the SDK, so that it
//!   builds outside this repository with nothing but cargo.
//! - `check`, `run` and `bench` take a built file through the hub's own loader and calls
//!   (see [`super::plugin_try`]).
//!
//! The templates are compiled into the binary (`include_str!`), so the scaffold always matches
//! the WIT this host runs.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The WIT contract every scaffold carries.
const WIT: &str = include_str!("../../../../wit/maestro-plugin.wit");

/// The Rust SDK's sources, copied into Rust scaffolds as `maestro-plugin-sdk/`.
const SDK_FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../../../plugins/sdk/Cargo.toml")),
    ("src/lib.rs", include_str!("../../../../plugins/sdk/src/lib.rs")),
    ("src/codec.rs", include_str!("../../../../plugins/sdk/src/codec.rs")),
    ("src/feedback.rs", include_str!("../../../../plugins/sdk/src/feedback.rs")),
    ("src/hooks.rs", include_str!("../../../../plugins/sdk/src/hooks.rs")),
    ("src/log.rs", include_str!("../../../../plugins/sdk/src/log.rs")),
    ("src/manifest.rs", include_str!("../../../../plugins/sdk/src/manifest.rs")),
    ("src/testing.rs", include_str!("../../../../plugins/sdk/src/testing.rs")),
    ("src/validator.rs", include_str!("../../../../plugins/sdk/src/validator.rs")),
    ("wit/maestro-plugin.wit", WIT),
];

#[derive(Debug, clap::Args)]
pub struct PluginCmd {
    #[command(subcommand)]
    action: PluginAction,
}

#[derive(Debug, clap::Subcommand)]
enum PluginAction {
    /// Write a new plugin project that builds and passes `maestro plugin check` as it is.
    New(NewArgs),
    /// Print a plugin file's world, versions and imports, and whether this host accepts it.
    Check(super::plugin_try::CheckArgs),
    /// Run a plugin once on an input, as its extension point would, and print the answer.
    Run(super::plugin_try::CallArgs),
    /// Measure a plugin: compile time and call latency.
    Bench(super::plugin_try::BenchArgs),
}

/// The extension point a plugin serves, named by its WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorldArg {
    Validator,
    StatusFeedback,
    Codec,
    ReconcileHook,
}

impl WorldArg {
    fn wit_name(self) -> &'static str {
        match self {
            WorldArg::Validator => "validator",
            WorldArg::StatusFeedback => "status-feedback",
            WorldArg::Codec => "codec",
            WorldArg::ReconcileHook => "reconcile-hook",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The world (extension point) the plugin exports.
    #[arg(value_enum)]
    world: WorldArg,
    /// The plugin's name: lowercase letters, digits and `-`; also the project directory.
    name: String,
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// Directory to create the project in (default: ./NAME).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub async fn run(cmd: PluginCmd) -> anyhow::Result<()> {
    match cmd.action {
        PluginAction::New(args) => new(args),
        // Plugin calls are synchronous and may take seconds to compile: off the async workers.
        PluginAction::Check(args) => blocking(move || super::plugin_try::check(args)).await,
        PluginAction::Run(args) => blocking(move || super::plugin_try::run(args)).await,
        PluginAction::Bench(args) => blocking(move || super::plugin_try::bench(args)).await,
    }
}

async fn blocking(work: impl FnOnce() -> anyhow::Result<()> + Send + 'static) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(work).await.context("plugin command panicked")?
}

fn new(args: NewArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && dir.read_dir().map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty; pick another NAME or --dir", dir.display());
    }
    let files = scaffold(args.world, &args.name, args.lang)?;
    for (path, text) in &files {
        write(&dir.join(path), text)?;
    }
    println!("created {} ({:?} {} plugin) in {}", args.name, args.lang, args.world.wit_name(), dir.display());
    println!("{}", next_steps(args.lang, &args.name, args.world, &dir));
    Ok(())
}

/// Plugin names become file names, policy keys and metric labels: keep them plain.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        bail!("NAME {name:?}: use 1 to 63 lowercase letters, digits and '-', starting with a letter")
    }
}

/// The project's files, relative to its directory.
pub fn scaffold(world: WorldArg, name: &str, lang: Lang) -> anyhow::Result<Vec<(String, String)>> {
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{Type}}", &pascal_case(name))
            .replace("{{world}}", world.wit_name())
    };
    let mut files = vec![("wit/maestro-plugin.wit".to_owned(), WIT.to_owned())];
    match lang {
        Lang::Rust => {
            let source = match world {
                WorldArg::Validator => include_str!("plugin_templates/rust/validator.rs"),
                WorldArg::StatusFeedback => include_str!("plugin_templates/rust/status-feedback.rs"),
                WorldArg::Codec => include_str!("plugin_templates/rust/codec.rs"),
                WorldArg::ReconcileHook => include_str!("plugin_templates/rust/reconcile-hook.rs"),
            };
            files.push(("Cargo.toml".into(), fill(include_str!("plugin_templates/rust/Cargo.toml"))));
            files.push(("src/lib.rs".into(), fill(source)));
            files.push(("README.md".into(), fill(include_str!("plugin_templates/rust/README.md"))));
            for (path, text) in SDK_FILES {
                files.push((format!("maestro-plugin-sdk/{path}"), (*text).to_owned()));
            }
        }
        Lang::Python => {
            let source = match world {
                WorldArg::Validator => include_str!("plugin_templates/python/validator.py"),
                WorldArg::StatusFeedback => include_str!("plugin_templates/python/status-feedback.py"),
                WorldArg::Codec => include_str!("plugin_templates/python/codec.py"),
                WorldArg::ReconcileHook => include_str!("plugin_templates/python/reconcile-hook.py"),
            };
            files.push(("app.py".into(), fill(source)));
            files.push(("README.md".into(), fill(include_str!("plugin_templates/python/README.md"))));
        }
        Lang::Js => {
            let source = match world {
                WorldArg::Validator => include_str!("plugin_templates/js/validator.js"),
                WorldArg::StatusFeedback => include_str!("plugin_templates/js/status-feedback.js"),
                WorldArg::Codec => include_str!("plugin_templates/js/codec.js"),
                WorldArg::ReconcileHook => include_str!("plugin_templates/js/reconcile-hook.js"),
            };
            files.push(("app.js".into(), fill(source)));
            files.push(("package.json".into(), fill(include_str!("plugin_templates/js/package.json"))));
            files.push(("README.md".into(), fill(include_str!("plugin_templates/js/README.md"))));
        }
    }
    Ok(files)
}

fn pascal_case(name: &str) -> String {
    name.split('-')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn next_steps(lang: Lang, name: &str, world: WorldArg, dir: &Path) -> String {
    let dir = dir.display();
    let world = world.wit_name();
    match lang {
        Lang::Rust => format!(
            "next:\n  cd {dir}\n  cargo test\n  cargo build --release --target wasm32-wasip2\n  maestro plugin check target/wasm32-wasip2/release/{}.wasm",
            name.replace('-', "_")
        ),
        Lang::Python => format!(
            "next:\n  cd {dir}\n  python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1\n  .venv/bin/componentize-py -d wit -w {world} componentize app -o {name}.wasm\n  maestro plugin check {name}.wasm"
        ),
        Lang::Js => {
            format!("next:\n  cd {dir}\n  npm install && npm run build\n  maestro plugin check {name}.wasm")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_plain_lowercase() {
        assert!(check_name("require-owner").is_ok());
        for bad in ["", "Owner", "1st", "a_b", "a-", "a/b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_rust_scaffold_carries_the_sdk_and_the_wit_and_names_its_type() {
        let files = scaffold(WorldArg::Validator, "require-owner", Lang::Rust).unwrap();
        let file = |path: &str| &files.iter().find(|(p, _)| p == path).unwrap().1;
        assert!(file("src/lib.rs").contains("export_validator!(RequireOwner)"));
        assert!(file("Cargo.toml").contains("name = \"require-owner\""));
        assert_eq!(file("maestro-plugin-sdk/wit/maestro-plugin.wit"), WIT);
        assert!(files.iter().all(|(_, text)| !text.contains("{{")), "a placeholder was left unfilled");
    }

    #[test]
    fn every_world_has_a_template_in_every_language() {
        let worlds = [WorldArg::Validator, WorldArg::StatusFeedback, WorldArg::Codec, WorldArg::ReconcileHook];
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for world in worlds {
                let files = scaffold(world, "x", lang).unwrap_or_else(|err| panic!("{lang:?} {world:?}: {err}"));
                let source = files
                    .iter()
                    .find(|(path, _)| ["src/lib.rs", "app.py", "app.js"].contains(&path.as_str()))
                    .map(|(_, text)| text)
                    .unwrap_or_else(|| panic!("{lang:?} {world:?}: no source file"));
                // Rust templates name the world through the SDK's export macro, the others in a
                // `world:` header that scripts/build-plugins also reads.
                if lang != Lang::Rust {
                    assert!(source.contains(&format!("world: {}\n", world.wit_name())), "{lang:?} {world:?}");
                }
                assert!(files.iter().all(|(_, text)| !text.contains("{{")), "{lang:?} {world:?}: placeholder left");
            }
        }
    }
}
