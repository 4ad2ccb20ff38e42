//! Validator: every container image must be pinned by digest (`@sha256:...`) and come from
//! a registry the policy allows.

use maestro_plugin::prelude::*;

pub struct AllowedImages;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Registries images may come from, e.g. `ghcr.io` or `registry.example.com/team`.
    /// Empty allows every registry. Docker Hub images count as `docker.io`.
    pub allowed_registries: Vec<String>,
    /// Whether images must name a digest.
    pub require_digest: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { allowed_registries: Vec::new(), require_digest: true }
    }
}

impl Validator for AllowedImages {
    type Settings = Settings;

    fn validate(_ctx: &Context, _op: Operation, manifest: &Manifest, settings: &Settings) -> Verdict {
        let mut violations = Violations::new();
        for container in manifest.containers() {
            let path = container.field("image");
            let Some(image) = container.image().filter(|image| !image.is_empty()) else {
                violations.add(path, "the container names no image");
                continue;
            };
            if settings.require_digest && !has_digest(image) {
                violations.add(path.clone(), format!("image {image} is not pinned by digest (@sha256:...)"));
            }
            if !settings.allowed_registries.is_empty()
                && !settings.allowed_registries.iter().any(|allowed| from_registry(image, allowed))
            {
                violations.add(path, format!("image {image} is not from an allowed registry"));
            }
        }
        violations.into_verdict()
    }
}

fn has_digest(image: &str) -> bool {
    image.split_once('@').is_some_and(|(_, digest)| {
        digest.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// The image reference with its registry made explicit, as the container runtime reads it:
/// a first segment without `.`, `:` or `localhost` is a Docker Hub repository.
fn qualified(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => image.to_owned(),
        Some(_) => format!("docker.io/{image}"),
        None => format!("docker.io/library/{image}"),
    }
}

fn from_registry(image: &str, allowed: &str) -> bool {
    let allowed = allowed.trim_end_matches('/');
    qualified(image).strip_prefix(allowed).is_some_and(|rest| rest.starts_with('/'))
}

maestro_plugin::export_validator!(AllowedImages);

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    const DIGEST: &str = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn deployment(images: &[&str]) -> Value {
        let containers: Vec<_> =
            images.iter().enumerate().map(|(i, image)| json!({"name": format!("c{i}"), "image": image})).collect();
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn a_tag_without_digest_is_refused_by_default() {
        let verdict = testing::validate::<AllowedImages>(&deployment(&["nginx:1.27"]), &json!({}));
        assert_eq!(verdict.violations()[0].path, "spec.template.spec.containers[0].image");
        assert!(verdict.violations()[0].message.contains("digest"));
        let pinned = format!("nginx{DIGEST}");
        assert!(testing::validate::<AllowedImages>(&deployment(&[&pinned]), &json!({})).is_allow());
    }

    #[test]
    fn only_allowed_registries_pass_and_docker_hub_is_docker_io() {
        let settings = json!({"allowed_registries": ["ghcr.io/acme"], "require_digest": false});
        let verdict = testing::validate::<AllowedImages>(
            &deployment(&["ghcr.io/acme/api:1", "ghcr.io/acmeevil/api:1", "nginx:1", "quay.io/x/y"]),
            &settings,
        );
        let refused: Vec<_> = verdict.violations().iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            refused,
            [
                "spec.template.spec.containers[1].image",
                "spec.template.spec.containers[2].image",
                "spec.template.spec.containers[3].image"
            ]
        );
        let hub = json!({"allowed_registries": ["docker.io"], "require_digest": false});
        assert!(testing::validate::<AllowedImages>(&deployment(&["nginx:1", "bitnami/redis"]), &hub).is_allow());
    }

    #[test]
    fn a_short_or_malformed_digest_does_not_count() {
        assert!(!has_digest("nginx@sha256:abc"));
        assert!(!has_digest("nginx:sha256"));
        assert!(has_digest(&format!("localhost:5000/nginx{DIGEST}")));
    }
}
