//! `maestro package push` and `maestro package list` (no arguments): the hub's operator
//! package repository.

use super::*;

/// Uploads an archive; prints what the hub stored (its digest, and verify's warnings).
pub async fn push_package(args: &HubArgs, file: &std::path::Path) -> anyhow::Result<()> {
    finish(push(args, file).await)
}

async fn push(args: &HubArgs, file: &std::path::Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let hub = Hub::connect(args)?;
    let stored = hub
        .call(Method::POST, "/operator-packages", &[], Some(Payload::Bytes(bytes, "application/gzip")))
        .await
        .with_context(|| format!("pushing {}", file.display()))?
        .unwrap_or(Value::Null);
    if args.output != Format::Table {
        return Ok(output::emit(&output::machine(args.output, &stored)?)?);
    }
    let text = |k: &str| stored[k].as_str().unwrap_or_default().to_string();
    let mut lines = format!("pushed {} (sha256 {})\n", text("archive_name"), text("digest"));
    for warning in stored["summary"]["warnings"].as_array().into_iter().flatten() {
        lines.push_str(&format!("warning: {}\n", warning.as_str().unwrap_or_default()));
    }
    output::emit(&lines)?;
    Ok(())
}

/// The hub's packages: a table of name, versions, digest and upload time.
pub async fn list_packages(args: &HubArgs) -> anyhow::Result<()> {
    finish(list(args).await)
}

async fn list(args: &HubArgs) -> anyhow::Result<()> {
    let hub = Hub::connect(args)?;
    let listed = hub.get("/operator-packages").await.context("listing operator packages")?;
    if args.output != Format::Table {
        return Ok(output::emit(&output::machine(args.output, &listed)?)?);
    }
    let mut table = output::Table::new(&["NAME", "APP VERSION", "OPERATOR VERSION", "DIGEST", "UPLOADED"]);
    for item in listed["items"].as_array().into_iter().flatten() {
        let text = |k: &str| item[k].as_str().unwrap_or_default().to_string();
        let digest: String = text("digest").chars().take(12).collect();
        table.push(vec![text("name"), text("app_version"), text("operator_version"), digest, text("created_at")]);
    }
    output::emit(&table.render())?;
    Ok(())
}
